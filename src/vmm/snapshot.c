// SPDX-License-Identifier: Apache-2.0
#include "vmm/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "vmm/kvm/vcpu_state.h"
#include "vmm/machine.h"

#define SNAP_MAGIC   "VMIGSNAP"
#define SNAP_VERSION 1u
#define SNAP_RAM_RUN (256u * GUEST_PAGE_SIZE) /* at most 1 MiB of pages per RAM record */

enum snap_type { SNAP_CLOCK = 1, SNAP_IRQCHIP, SNAP_VCPU, SNAP_RAM, SNAP_END };

struct snap_hdr {
	char magic[8];
	uint32_t version;
	uint32_t vcpus;
	uint64_t mem_size;
};

struct snap_rec {
	uint32_t type;
	uint32_t zero;
	uint64_t len;
};

static int snap_put(FILE *f, uint32_t type, const void *a, size_t alen, const void *b, size_t blen)
{
	struct snap_rec r = {.type = type, .len = alen + blen};
	if (fwrite(&r, sizeof(r), 1, f) != 1 || (alen && fwrite(a, alen, 1, f) != 1) ||
	    (blen && fwrite(b, blen, 1, f) != 1))
		return -EIO;
	return 0;
}

static bool snap_page_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	for (size_t i = 0; i < GUEST_PAGE_SIZE / 8; i++) {
		if (w[i])
			return false;
	}
	return true;
}

/* Non-zero pages of [off, end) of a region, as runs of up to SNAP_RAM_RUN bytes. */
static int snap_save_range(FILE *f, const struct guest_mem_region *r, uint64_t off, uint64_t end)
{
	while (off < end) {
		if (snap_page_zero(r->host + off)) {
			off += GUEST_PAGE_SIZE;
			continue;
		}
		uint64_t run = off + GUEST_PAGE_SIZE;
		while (run < end && run - off < SNAP_RAM_RUN && !snap_page_zero(r->host + run))
			run += GUEST_PAGE_SIZE;
		uint64_t gpa = r->gpa + off;
		int ret = snap_put(f, SNAP_RAM, &gpa, sizeof(gpa), r->host + off, run - off);
		if (ret < 0)
			return ret;
		off = run;
	}
	return 0;
}

/*
 * Only the memfd's data extents are read (SEEK_DATA/SEEK_HOLE): reading a never-touched
 * shared memfd page through the mapping would allocate it, and a 6 GiB guest would cost
 * 6 GiB of host memory to save.
 */
static int snap_save_region(FILE *f, const struct guest_mem *gm, const struct guest_mem_region *r)
{
	uint64_t off = 0;

	while (off < r->size) {
		off_t data = lseek(gm->fd, (off_t)(r->offset + off), SEEK_DATA);
		if (data < 0 || (uint64_t)data >= r->offset + r->size)
			break; /* ENXIO: no data after off */
		off_t hole = lseek(gm->fd, data, SEEK_HOLE);
		uint64_t start = ALIGN_DOWN((uint64_t)data - r->offset, GUEST_PAGE_SIZE);
		uint64_t end = hole < 0 ? r->size : MIN(r->size, (uint64_t)hole - r->offset);
		end = ALIGN_UP(end, GUEST_PAGE_SIZE);
		int ret = snap_save_range(f, r, start, end);
		if (ret < 0)
			return ret;
		off = end;
	}
	return 0;
}

static int snap_save_vcpus(FILE *f, struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu_state st;
		void *blob;
		size_t len;
		int ret = vcpu_state_get(&vm->vcpus[i], &st);
		if (ret < 0)
			return ret;
		ret = vcpu_state_serialise(&st, &blob, &len);
		vcpu_state_free(&st);
		if (ret < 0)
			return ret;
		ret = snap_put(f, SNAP_VCPU, blob, len, NULL, 0);
		free(blob);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* KVM clock, irqchip and every vCPU, as records. */
static int snap_save_cpu(FILE *f, struct machine *m)
{
	struct kvm_clock_data clock;
	struct kvm_irqchip chips[VM_NR_IRQCHIPS];
	int ret;

	if ((ret = vm_clock_get(m->vm, &clock)) < 0 ||
	    (ret = snap_put(f, SNAP_CLOCK, &clock, sizeof(clock), NULL, 0)) < 0 ||
	    (ret = vm_irqchip_get(m->vm, chips)) < 0 ||
	    (ret = snap_put(f, SNAP_IRQCHIP, chips, sizeof(chips), NULL, 0)) < 0)
		return ret;
	return snap_save_vcpus(f, m->vm);
}

int snapshot_write_state(struct machine *m, FILE *f)
{
	int ret = snap_save_cpu(f, m);
	return ret < 0 ? ret : snap_put(f, SNAP_END, NULL, 0, NULL, 0);
}

static int snap_save_body(FILE *f, struct machine *m)
{
	struct snap_hdr h = {
	    .version = SNAP_VERSION, .vcpus = m->vm->nr_vcpus, .mem_size = m->mem->size};
	int ret;

	memcpy(h.magic, SNAP_MAGIC, 8);
	if (fwrite(&h, sizeof(h), 1, f) != 1)
		return -EIO;
	if ((ret = snap_save_cpu(f, m)) < 0)
		return ret;
	for (unsigned i = 0; i < m->mem->nr_regions; i++) {
		if ((ret = snap_save_region(f, m->mem, &m->mem->regions[i])) < 0)
			return ret;
	}
	return snap_put(f, SNAP_END, NULL, 0, NULL, 0);
}

int snapshot_save(struct machine *m, const char *path)
{
	FILE *f = fopen(path, "wb");
	if (!f) {
		log_error("%s: %s", path, strerror(errno));
		return -errno;
	}
	int ret = snap_save_body(f, m);
	if (fclose(f) != 0 && ret == 0)
		ret = -EIO;
	if (ret < 0)
		log_error("saving snapshot %s: %s", path, strerror(-ret));
	return ret;
}

/* Loading ---------------------------------------------------------------------------- */

/*
 * Loading collects the clock, the irqchip and the vCPU states first and applies them only
 * once the stream proved complete (snap_apply): a malformed stream leaves KVM's CPU state
 * untouched. RAM records go straight into guest memory.
 */
struct snap_load {
	FILE *f;
	struct machine *m;
	bool clock_seen, irq_seen;
	struct kvm_clock_data clock;
	struct kvm_irqchip chips[VM_NR_IRQCHIPS];
	struct vcpu_state *states; /* one per vCPU; xsave != NULL once seen */
};

static int snap_load_ram(struct snap_load *l, uint64_t len)
{
	uint64_t gpa;

	if (len < sizeof(gpa) || fread(&gpa, sizeof(gpa), 1, l->f) != 1)
		return -EINVAL;
	len -= sizeof(gpa);
	uint8_t *dst = guest_mem_ptr(l->m->mem, gpa, len ? len : 1);
	if (!dst || len % GUEST_PAGE_SIZE || gpa % GUEST_PAGE_SIZE || len > SNAP_RAM_RUN)
		return -EINVAL;
	if (fread(dst, len, 1, l->f) != 1)
		return -EINVAL;
	guest_mem_mark_dirty(l->m->mem, gpa, len);
	return 0;
}

static int snap_load_vcpu(struct snap_load *l, uint64_t len)
{
	struct vcpu_state st;

	if (len > 1024 * 1024)
		return -EINVAL;
	void *blob = malloc(len ? len : 1);
	if (!blob)
		return -ENOMEM;
	int ret = fread(blob, len, 1, l->f) == 1 ? vcpu_state_parse(blob, len, &st) : -EINVAL;
	free(blob);
	if (ret < 0)
		return ret;
	if (st.index >= l->m->vm->nr_vcpus || l->states[st.index].xsave) {
		vcpu_state_free(&st);
		return -EINVAL;
	}
	l->states[st.index] = st;
	return 0;
}

static int snap_load_fixed(struct snap_load *l, void *dst, size_t size, uint64_t len, bool *seen)
{
	if (len != size || *seen || fread(dst, size, 1, l->f) != 1)
		return -EINVAL;
	*seen = true;
	return 0;
}

/* One record; 1 at END. */
static int snap_load_one(struct snap_load *l)
{
	struct snap_rec r;

	if (fread(&r, sizeof(r), 1, l->f) != 1 || r.zero)
		return -EINVAL;
	switch (r.type) {
	case SNAP_CLOCK:
		return snap_load_fixed(l, &l->clock, sizeof(l->clock), r.len, &l->clock_seen);
	case SNAP_IRQCHIP:
		return snap_load_fixed(l, l->chips, sizeof(l->chips), r.len, &l->irq_seen);
	case SNAP_VCPU:
		return snap_load_vcpu(l, r.len);
	case SNAP_RAM:
		return snap_load_ram(l, r.len);
	case SNAP_END:
		return r.len == 0 ? 1 : -EINVAL;
	default:
		return -EINVAL;
	}
}

/* Irqchip, then every vCPU (their LAPICs after the irqchip), then the clock. */
static int snap_apply(struct snap_load *l)
{
	struct vm *vm = l->m->vm;
	int ret;

	if (!l->clock_seen || !l->irq_seen)
		return -EINVAL;
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (!l->states[i].xsave)
			return -EINVAL;
	}
	if ((ret = vm_irqchip_set(vm, l->chips)) < 0)
		return ret;
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if ((ret = vcpu_state_set(&vm->vcpus[i], &l->states[i])) < 0)
			return ret;
	}
	return vm_clock_set(vm, &l->clock);
}

static int snap_load_all(struct machine *m, FILE *f)
{
	struct snap_load l = {.f = f, .m = m};
	int ret = 0;

	l.states = calloc(m->vm->nr_vcpus, sizeof(*l.states));
	if (!l.states)
		return -ENOMEM;
	while (ret == 0)
		ret = snap_load_one(&l);
	if (ret > 0)
		ret = snap_apply(&l);
	for (unsigned i = 0; i < m->vm->nr_vcpus; i++)
		vcpu_state_free(&l.states[i]);
	free(l.states);
	return ret;
}

static int snap_open(const char *path, FILE **f, struct snap_hdr *h)
{
	*f = fopen(path, "rb");
	if (!*f) {
		int err = -errno;
		log_error("%s: %s", path, strerror(errno));
		return err;
	}
	if (fread(h, sizeof(*h), 1, *f) != 1 || memcmp(h->magic, SNAP_MAGIC, 8) != 0) {
		log_error("%s: not a vmig snapshot", path);
		return -EINVAL;
	}
	if (h->version != SNAP_VERSION) {
		log_error("%s: snapshot version %u, this vmig reads %u", path, h->version,
			  SNAP_VERSION);
		return -EPROTO;
	}
	uint64_t size = h->mem_size;
	if (h->vcpus == 0 || h->vcpus > 64 || size == 0 || size > GUEST_MEM_MAX ||
	    size % GUEST_PAGE_SIZE) {
		log_error("%s: corrupt snapshot header", path);
		return -EINVAL;
	}
	return 0;
}

int snapshot_read_state(struct machine *m, FILE *f)
{
	return snap_load_all(m, f);
}

int snapshot_restore(const char *path, const struct machine_config *base, struct machine **out)
{
	struct snap_hdr h;
	struct machine *m = NULL;
	FILE *f = NULL;
	int ret = snap_open(path, &f, &h);

	if (ret == 0) {
		struct machine_config cfg = *base;
		cfg.mem_size = h.mem_size;
		cfg.nr_vcpus = h.vcpus;
		ret = machine_create(&cfg, &m);
	}
	if (ret == 0) {
		ret = snap_load_all(m, f);
		if (ret < 0)
			log_error("%s: corrupt or truncated snapshot (%s)", path, strerror(-ret));
	}
	if (f)
		fclose(f);
	if (ret < 0) {
		machine_destroy(m);
		return ret;
	}
	*out = m;
	return 0;
}
