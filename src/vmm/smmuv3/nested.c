// SPDX-License-Identifier: Apache-2.0
/* The nested bridge between a vSMMU and the host's iommufd (see nested.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/trace.h"
#include "arch/smmuv3.h"
#include "common/util.h"
#include "vmm/smmuv3/nested.h"

#define NESTED_MAX_DEVS	     32
#define NESTED_DEFAULT_DEPTH 256
/* Records taken from each fd per poll: a flood cannot hold the poller forever. */
#define NESTED_POLL_BATCH 256

struct nested_dev {
	bool used;
	uint32_t vsid, dev_id, vdevice_id;
	uint32_t hwpt_id; /* the nested HWPT the device is on; 0: on the parent */
	uint64_t vste[2];
};

struct vsmmu_nested {
	struct vsmmu *vs;
	struct iommufd_ctx *ctx;
	uint32_t parent_hwpt_id, veventq_depth;
	uint32_t viommu_id, veventq_id, fault_id;
	int veventq_fd, fault_fd;
	pthread_mutex_t lock;
	struct nested_dev devs[NESTED_MAX_DEVS];
	bool seq_valid; /* vEVENTQ sequence tracking (poller only) */
	uint32_t seq;
	pthread_t thread;
	bool running;
	int stop_fd;
	struct vsmmu_nested_stats stats;
};

/* Device table (lock held) ------------------------------------------------------------ */

static struct nested_dev *nested_dev_by_vsid(struct vsmmu_nested *n, uint32_t vsid)
{
	for (unsigned i = 0; i < NESTED_MAX_DEVS; i++)
		if (n->devs[i].used && n->devs[i].vsid == vsid)
			return &n->devs[i];
	return NULL;
}

static struct nested_dev *nested_dev_by_id(struct vsmmu_nested *n, uint32_t dev_id)
{
	for (unsigned i = 0; i < NESTED_MAX_DEVS; i++)
		if (n->devs[i].used && n->devs[i].dev_id == dev_id)
			return &n->devs[i];
	return NULL;
}

static struct nested_dev *nested_dev_free_slot(struct vsmmu_nested *n)
{
	for (unsigned i = 0; i < NESTED_MAX_DEVS; i++)
		if (!n->devs[i].used)
			return &n->devs[i];
	return NULL;
}

/* Bridge operations (called with the vSMMU's lock held) ----------------------------- */

static bool nested_sid_attached(void *opaque, uint32_t vsid)
{
	struct vsmmu_nested *n = opaque;
	bool found;

	pthread_mutex_lock(&n->lock);
	found = nested_dev_by_vsid(n, vsid) != NULL;
	pthread_mutex_unlock(&n->lock);
	return found;
}

static int nested_sid_next(void *opaque, uint32_t from, uint32_t *vsid)
{
	struct vsmmu_nested *n = opaque;
	uint64_t best = UINT64_MAX;

	pthread_mutex_lock(&n->lock);
	for (unsigned i = 0; i < NESTED_MAX_DEVS; i++)
		if (n->devs[i].used && n->devs[i].vsid >= from && n->devs[i].vsid < best)
			best = n->devs[i].vsid;
	pthread_mutex_unlock(&n->lock);
	if (best == UINT64_MAX)
		return -ENOENT;
	*vsid = (uint32_t)best;
	return 0;
}

/* Sends guest commands to the host, skipping any it refuses. Lock held. */
static int nested_invalidate_locked(struct vsmmu_nested *n, const uint64_t (*cmds)[2], size_t cnt)
{
	struct iommu_hwpt_invalidate inv;
	size_t done = 0;
	int rc = 0, first_err = 0;

	if (!n->viommu_id)
		return 0; /* no device yet: nothing on the host can hold guest translations */
	while (done < cnt) {
		inv = (struct iommu_hwpt_invalidate){
		    .size = sizeof(inv),
		    .hwpt_id = n->viommu_id,
		    .data_uptr = (uint64_t)(uintptr_t)&cmds[done],
		    .data_type = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
		    .entry_len = sizeof(struct iommu_viommu_arm_smmuv3_invalidate),
		    .entry_num = (uint32_t)(cnt - done),
		};
		rc = iommufd_hwpt_invalidate(n->ctx, &inv);
		n->stats.inv_calls++;
		n->stats.inv_cmds += inv.entry_num;
		done += inv.entry_num;
		if (rc == 0)
			break;
		TRACE(vsmmu_nested_inv_error, "cmd=%#llx rc=%d",
		      done < cnt ? (unsigned long long)cmds[done][0] : 0ull, rc);
		first_err = first_err ? first_err : rc;
		if (rc != -EIO)
			break; /* the call itself failed, not one command */
		n->stats.inv_errors++;
		done++; /* skip the refused command, keep the rest */
	}
	return first_err;
}

static int nested_invalidate(void *opaque, const uint64_t (*cmds)[2], size_t cnt)
{
	struct vsmmu_nested *n = opaque;
	int rc;

	pthread_mutex_lock(&n->lock);
	rc = nested_invalidate_locked(n, cmds, cnt);
	pthread_mutex_unlock(&n->lock);
	return rc;
}

static int nested_hwpt_alloc(struct vsmmu_nested *n, struct nested_dev *d, const uint64_t vste[2],
			     uint32_t *hwpt_id)
{
	struct iommu_hwpt_arm_smmuv3 data = {.ste = {vste[0], vste[1]}};
	struct iommu_hwpt_alloc cmd = {
	    .size = sizeof(cmd),
	    .flags = IOMMU_HWPT_FAULT_ID_VALID,
	    .dev_id = d->dev_id,
	    .pt_id = n->viommu_id,
	    .data_type = IOMMU_HWPT_DATA_ARM_SMMUV3,
	    .data_len = sizeof(data),
	    .data_uptr = (uint64_t)(uintptr_t)&data,
	    .fault_id = n->fault_id,
	};
	int rc = iommufd_hwpt_alloc(n->ctx, &cmd);

	if (rc == 0) {
		*hwpt_id = cmd.out_hwpt_id;
		n->stats.hwpt_allocs++;
	}
	return rc;
}

/* Moves the device to pt_id whether or not something attached it before. */
static int nested_dev_move(struct vsmmu_nested *n, struct nested_dev *d, uint32_t pt_id)
{
	uint32_t pt = pt_id;
	int rc = iommufd_device_replace(n->ctx, d->dev_id, &pt);

	if (rc == -EINVAL) {
		pt = pt_id;
		rc = iommufd_device_attach(n->ctx, d->dev_id, &pt);
	}
	return rc;
}

/* An unchanged vSTE keeps its HWPT; only the CDs behind it may have changed. */
static int nested_ste_reuse(struct vsmmu_nested *n, struct nested_dev *d,
			    const struct vsmmu_ste *ste)
{
	uint64_t cfgi[1][2] = {{FSET(FSET(0, CMD0_OP, CMD_CFGI_CD_ALL), CMD0_SID, d->vsid), 0}};

	n->stats.hwpt_reused++;
	return ste->kind == VSMMU_STE_S1 ? nested_invalidate_locked(n, cfgi, 1) : 0;
}

static int nested_ste_install_locked(struct vsmmu_nested *n, struct nested_dev *d,
				     const struct vsmmu_ste *ste)
{
	uint32_t hwpt_id, old = d->hwpt_id;
	int rc;

	if (old && d->vste[0] == ste->words[0] && d->vste[1] == ste->words[1])
		return nested_ste_reuse(n, d, ste);
	rc = nested_hwpt_alloc(n, d, ste->words, &hwpt_id);
	if (rc)
		return rc;
	rc = nested_dev_move(n, d, hwpt_id);
	if (rc) {
		iommufd_destroy(n->ctx, hwpt_id);
		return rc;
	}
	d->hwpt_id = hwpt_id;
	d->vste[0] = ste->words[0];
	d->vste[1] = ste->words[1];
	if (old)
		iommufd_destroy(n->ctx, old);
	return 0;
}

/*
 * Test seam (tests/migration/test_mig_sva.py, post-load): VMIG_TEST_HOST_REFUSE_S1=1 makes
 * this host refuse every guest stage-1 configuration, as a host without a feature the
 * guest's configuration needs would. Unset in production.
 */
static bool nested_test_refuse(const struct vsmmu_ste *ste)
{
	const char *v = getenv("VMIG_TEST_HOST_REFUSE_S1");

	return v && *v == '1' && ste->kind == VSMMU_STE_S1;
}

static int nested_ste_install(void *opaque, uint32_t vsid, const struct vsmmu_ste *ste)
{
	struct vsmmu_nested *n = opaque;
	struct nested_dev *d;
	int rc = -ENOENT;

	if (nested_test_refuse(ste))
		return -EOPNOTSUPP;
	pthread_mutex_lock(&n->lock);
	d = nested_dev_by_vsid(n, vsid);
	if (d)
		rc = nested_ste_install_locked(n, d, ste);
	pthread_mutex_unlock(&n->lock);
	TRACE(vsmmu_nested_install, "vsid=%#x kind=%d hwpt=%u rc=%d", vsid, ste->kind,
	      d ? d->hwpt_id : 0, rc);
	return rc;
}

static int nested_respond(struct vsmmu_nested *n, uint32_t cookie, uint32_t code)
{
	struct iommu_hwpt_page_response r = {.cookie = cookie, .code = code};
	ssize_t rc = iommufd_fault_write(n->fault_fd, &r, sizeof(r));

	__atomic_fetch_add(&n->stats.responses, 1, __ATOMIC_RELAXED);
	TRACE(vsmmu_nested_response, "cookie=%#x code=%u rc=%zd", cookie, code, rc);
	return rc < 0 ? (int)rc : 0;
}

static int nested_page_response(void *opaque, uint32_t vsid, uint32_t cookie,
				enum vsmmu_resume resp)
{
	return nested_respond(opaque, cookie,
			      resp == VSMMU_RESUME_RETRY ? IOMMUFD_PAGE_RESP_SUCCESS
							 : IOMMUFD_PAGE_RESP_INVALID);
}

static const struct vsmmu_bridge_ops nested_ops = {
    .sid_attached = nested_sid_attached,
    .sid_next = nested_sid_next,
    .ste_install = nested_ste_install,
    .invalidate = nested_invalidate,
    .page_response = nested_page_response,
};

/* Host capabilities ------------------------------------------------------------------- */

static unsigned nested_oas_bits(unsigned enc)
{
	static const unsigned bits[] = {32, 36, 40, 42, 44, 48, 52};

	return enc < ARRAY_SIZE(bits) ? bits[enc] : 48;
}

int vsmmu_nested_config_from_host(struct iommufd_ctx *ctx, uint32_t dev_id,
				  struct vsmmu_config *cfg)
{
	struct iommu_hw_info_arm_smmuv3 info = {0};
	struct iommu_hw_info hw = {.size = sizeof(hw),
				   .dev_id = dev_id,
				   .data_len = sizeof(info),
				   .data_uptr = (uint64_t)(uintptr_t)&info};
	unsigned host_oas;
	int rc = iommufd_get_hw_info(ctx, &hw);

	if (rc)
		return rc;
	if (hw.out_data_type != IOMMU_HW_INFO_TYPE_ARM_SMMUV3)
		return -EOPNOTSUPP;
	cfg->ssid_bits = MIN(cfg->ssid_bits, (unsigned)FGET(info.idr[1], IDR1_SSIDSIZE));
	host_oas = nested_oas_bits((unsigned)FGET(info.idr[5], IDR5_OAS));
	/* The guest's output is an IPA the host's stage 2 takes as input (52 is not offered). */
	if (host_oas < cfg->oas_bits)
		cfg->oas_bits = host_oas;
	cfg->httu = MIN(cfg->httu, MIN(2u, (unsigned)FGET(info.idr[0], IDR0_HTTU)));
	if (FGET(info.idr[0], IDR0_STALL_MODEL) == 1)
		cfg->stall = false;
	if (FGET(info.idr[5], IDR5_STALL_MAX))
		cfg->stall_max = MIN(cfg->stall_max, (unsigned)FGET(info.idr[5], IDR5_STALL_MAX));
	TRACE(vsmmu_nested_hw_info, "ssid_bits=%u oas=%u httu=%u stall=%d stall_max=%u",
	      cfg->ssid_bits, cfg->oas_bits, cfg->httu, cfg->stall, cfg->stall_max);
	return 0;
}

/* Creation and devices ----------------------------------------------------------------- */

static void nested_fd_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int vsmmu_nested_create(struct vsmmu *vs, const struct vsmmu_nested_params *p,
			struct vsmmu_nested **out)
{
	struct iommu_fault_alloc fa = {.size = sizeof(fa)};
	struct vsmmu_nested *n;
	int rc;

	if (!vs || !p || !p->ctx || !p->parent_hwpt_id || !out)
		return -EINVAL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	rc = iommufd_fault_alloc(p->ctx, &fa);
	if (rc) {
		free(n);
		return rc;
	}
	pthread_mutex_init(&n->lock, NULL);
	n->vs = vs;
	n->ctx = p->ctx;
	n->parent_hwpt_id = p->parent_hwpt_id;
	n->veventq_depth = p->veventq_depth ? p->veventq_depth : NESTED_DEFAULT_DEPTH;
	n->fault_id = fa.out_fault_id;
	n->fault_fd = fa.out_fault_fd;
	n->veventq_fd = -1;
	n->stop_fd = -1;
	nested_fd_nonblock(n->fault_fd);
	vsmmu_set_bridge(vs, &nested_ops, n);
	*out = n;
	return 0;
}

/* The vIOMMU and its vEVENTQ, made with the first device. Lock held. */
static int nested_viommu_make(struct vsmmu_nested *n, uint32_t dev_id)
{
	struct iommu_viommu_alloc va = {.size = sizeof(va),
					.type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
					.dev_id = dev_id,
					.hwpt_id = n->parent_hwpt_id};
	struct iommu_veventq_alloc ea = {.size = sizeof(ea),
					 .type = IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
					 .veventq_depth = n->veventq_depth};
	int rc = iommufd_viommu_alloc(n->ctx, &va);

	if (rc)
		return rc;
	ea.viommu_id = va.out_viommu_id;
	rc = iommufd_veventq_alloc(n->ctx, &ea);
	if (rc) {
		iommufd_destroy(n->ctx, va.out_viommu_id);
		return rc;
	}
	n->viommu_id = va.out_viommu_id;
	n->veventq_id = ea.out_veventq_id;
	nested_fd_nonblock(ea.out_veventq_fd);
	__atomic_store_n(&n->veventq_fd, ea.out_veventq_fd, __ATOMIC_RELEASE);
	return 0;
}

static int nested_attach_locked(struct vsmmu_nested *n, uint32_t vsid, uint32_t dev_id)
{
	struct iommu_vdevice_alloc vd = {.size = sizeof(vd), .dev_id = dev_id, .virt_id = vsid};
	struct nested_dev *d;
	int rc;

	if (nested_dev_by_vsid(n, vsid) || nested_dev_by_id(n, dev_id))
		return -EEXIST;
	d = nested_dev_free_slot(n);
	if (!d)
		return -ENOSPC;
	if (!n->viommu_id) {
		rc = nested_viommu_make(n, dev_id);
		if (rc)
			return rc;
	}
	vd.viommu_id = n->viommu_id;
	rc = iommufd_vdevice_alloc(n->ctx, &vd);
	if (rc)
		return rc;
	*d = (struct nested_dev){
	    .used = true, .vsid = vsid, .dev_id = dev_id, .vdevice_id = vd.out_vdevice_id};
	return 0;
}

int vsmmu_nested_attach(struct vsmmu_nested *n, uint32_t vsid, uint32_t dev_id)
{
	int rc;

	pthread_mutex_lock(&n->lock);
	rc = nested_attach_locked(n, vsid, dev_id);
	pthread_mutex_unlock(&n->lock);
	TRACE(vsmmu_nested_attach, "vsid=%#x dev=%u rc=%d", vsid, dev_id, rc);
	if (rc == 0)
		vsmmu_sid_refresh(n->vs, vsid); /* whatever the guest configured already */
	return rc;
}

static void nested_detach_locked(struct vsmmu_nested *n, struct nested_dev *d)
{
	if (d->hwpt_id) {
		nested_dev_move(n, d, n->parent_hwpt_id);
		iommufd_destroy(n->ctx, d->hwpt_id);
	}
	iommufd_destroy(n->ctx, d->vdevice_id);
	memset(d, 0, sizeof(*d));
}

int vsmmu_nested_detach(struct vsmmu_nested *n, uint32_t vsid)
{
	struct nested_dev *d;
	int rc = -ENOENT;

	pthread_mutex_lock(&n->lock);
	d = nested_dev_by_vsid(n, vsid);
	if (d) {
		nested_detach_locked(n, d);
		rc = 0;
	}
	pthread_mutex_unlock(&n->lock);
	return rc;
}

void vsmmu_nested_fds(struct vsmmu_nested *n, int *veventq_fd, int *fault_fd)
{
	*veventq_fd = __atomic_load_n(&n->veventq_fd, __ATOMIC_ACQUIRE);
	*fault_fd = n->fault_fd;
}

void vsmmu_nested_get_stats(struct vsmmu_nested *n, struct vsmmu_nested_stats *st)
{
	pthread_mutex_lock(&n->lock);
	*st = n->stats;
	pthread_mutex_unlock(&n->lock);
}

/* Host -> guest ------------------------------------------------------------------------ */

static void nested_stat_add(struct vsmmu_nested *n, uint64_t *field)
{
	pthread_mutex_lock(&n->lock);
	(*field)++;
	pthread_mutex_unlock(&n->lock);
}

/* One vEVENTQ record: 1 handled, 0 nothing to read. */
static int nested_poll_one_event(struct vsmmu_nested *n, int fd)
{
	struct iommufd_vevent_header hdr;
	struct iommu_vevent_arm_smmuv3 ev;

	if (read(fd, &hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr))
		return 0;
	if (hdr.flags & IOMMU_VEVENTQ_FLAG_LOST_EVENTS) {
		n->seq_valid = false;
		nested_stat_add(n, &n->stats.vevents_lost);
		vsmmu_event_lost(n->vs);
		return 1;
	}
	/* The host writes header and record at once; a short read means a broken queue. */
	if (read(fd, &ev, sizeof(ev)) != (ssize_t)sizeof(ev))
		return 0;
	if (n->seq_valid && hdr.sequence != n->seq + 1) {
		nested_stat_add(n, &n->stats.vevents_lost);
		vsmmu_event_lost(n->vs);
	}
	n->seq_valid = true;
	n->seq = hdr.sequence;
	nested_stat_add(n, &n->stats.vevents);
	TRACE(vsmmu_nested_vevent, "seq=%u evt0=%#llx", hdr.sequence,
	      (unsigned long long)ev.evt[0]);
	vsmmu_event_inject(n->vs, ev.evt);
	return 1;
}

static struct vsmmu_stall nested_stall_from(const struct iommu_hwpt_pgfault *pf, uint32_t vsid)
{
	return (struct vsmmu_stall){
	    .vsid = vsid,
	    .ssv = pf->flags & IOMMU_PGFAULT_FLAGS_PASID_VALID,
	    .ssid = pf->pasid,
	    .addr = pf->addr,
	    .read = pf->perm & IOMMU_PGFAULT_PERM_READ,
	    .write = pf->perm & IOMMU_PGFAULT_PERM_WRITE,
	    .exec = pf->perm & IOMMU_PGFAULT_PERM_EXEC,
	    .priv = pf->perm & IOMMU_PGFAULT_PERM_PRIV,
	    .event_id = EVT_F_TRANSLATION,
	    .cookie = pf->cookie,
	};
}

/* One fault record: 1 handled, 0 nothing to read. */
static int nested_poll_one_fault(struct vsmmu_nested *n)
{
	struct iommu_hwpt_pgfault pf;
	struct nested_dev *d;
	struct vsmmu_stall st;
	uint32_t vsid = 0;
	bool known;

	if (read(n->fault_fd, &pf, sizeof(pf)) != (ssize_t)sizeof(pf))
		return 0;
	/* A group is answered once, by the cookie of its last record. */
	if (!(pf.flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE))
		return 1;
	pthread_mutex_lock(&n->lock);
	d = nested_dev_by_id(n, pf.dev_id);
	known = d != NULL;
	if (d)
		vsid = d->vsid;
	pthread_mutex_unlock(&n->lock);
	st = nested_stall_from(&pf, vsid);
	TRACE(vsmmu_nested_fault, "dev=%u vsid=%#x addr=%#llx cookie=%#x", pf.dev_id, vsid,
	      (unsigned long long)pf.addr, pf.cookie);
	if (known && vsmmu_stall_inject(n->vs, &st) == 0) {
		nested_stat_add(n, &n->stats.faults);
		return 1;
	}
	/* Nobody can answer it: fail the transaction now rather than hold the device. */
	nested_stat_add(n, &n->stats.faults_refused);
	nested_respond(n, pf.cookie, IOMMUFD_PAGE_RESP_INVALID);
	return 1;
}

int vsmmu_nested_poll(struct vsmmu_nested *n)
{
	int fd = __atomic_load_n(&n->veventq_fd, __ATOMIC_ACQUIRE), handled = 0, k;

	for (k = 0; fd >= 0 && k < NESTED_POLL_BATCH && nested_poll_one_event(n, fd); k++)
		handled++;
	for (k = 0; k < NESTED_POLL_BATCH && nested_poll_one_fault(n); k++)
		handled++;
	return handled;
}

/* Service thread ------------------------------------------------------------------------ */

static void *nested_thread_main(void *arg)
{
	struct vsmmu_nested *n = arg;
	struct pollfd pfd[3];

	for (;;) {
		pfd[0] = (struct pollfd){.fd = n->stop_fd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = __atomic_load_n(&n->veventq_fd, __ATOMIC_ACQUIRE),
					 .events = POLLIN};
		pfd[2] = (struct pollfd){.fd = n->fault_fd, .events = POLLIN};
		/* The vEVENTQ fd appears with the first device: look again now and then. */
		if (poll(pfd, 3, 100) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		vsmmu_nested_poll(n);
	}
	return NULL;
}

int vsmmu_nested_start(struct vsmmu_nested *n)
{
	if (n->running)
		return -EALREADY;
	n->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (n->stop_fd < 0)
		return -errno;
	if (pthread_create(&n->thread, NULL, nested_thread_main, n) != 0) {
		close(n->stop_fd);
		n->stop_fd = -1;
		return -EAGAIN;
	}
	n->running = true;
	return 0;
}

void vsmmu_nested_stop(struct vsmmu_nested *n)
{
	uint64_t one = 1;

	if (!n->running)
		return;
	if (write(n->stop_fd, &one, sizeof(one)) != sizeof(one))
		TRACE(vsmmu_nested_stop_error, "errno=%d", errno);
	pthread_join(n->thread, NULL);
	close(n->stop_fd);
	n->stop_fd = -1;
	n->running = false;
}

void vsmmu_nested_destroy(struct vsmmu_nested *n)
{
	if (!n)
		return;
	vsmmu_nested_stop(n);
	vsmmu_set_bridge(n->vs, NULL, NULL);
	pthread_mutex_lock(&n->lock);
	for (unsigned i = 0; i < NESTED_MAX_DEVS; i++)
		if (n->devs[i].used)
			nested_detach_locked(n, &n->devs[i]);
	if (n->veventq_id) {
		iommufd_destroy(n->ctx, n->veventq_id);
		close(n->veventq_fd);
	}
	if (n->viommu_id)
		iommufd_destroy(n->ctx, n->viommu_id);
	iommufd_destroy(n->ctx, n->fault_id);
	close(n->fault_fd);
	pthread_mutex_unlock(&n->lock);
	pthread_mutex_destroy(&n->lock);
	free(n);
}
