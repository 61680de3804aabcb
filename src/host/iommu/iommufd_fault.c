// SPDX-License-Identifier: Apache-2.0
/* I/O page-fault queues (stalls -> fault groups -> page responses) and MSI windows. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/trace.h"
#include "host/iommu/iommufd_internal.h"

/* Fault queues by fd, for iommufd_fault_write(). */
static pthread_mutex_t fault_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ifd_fault *fault_registry;

int iommufd_fault_alloc(struct iommufd_ctx *ctx, struct iommu_fault_alloc *cmd)
{
	int p[2];

	if (!ctx || !cmd)
		return -EINVAL;
	if (cmd->flags)
		return -EOPNOTSUPP;
	int rc = ifd_svc_start(ctx->host);
	if (rc)
		return rc;
	/* A packet socket: the VMM reads fault groups from p[0] and writes responses to it. */
	struct ifd_fault *f = calloc(1, sizeof(*f));
	if (!f || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p)) {
		free(f);
		return -ENOMEM;
	}
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	f->rfd = p[0];
	f->wfd = p[1];
	f->next_cookie = 1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_lock(&ctx->lock);
	rc = ifd_obj_add(ctx, &f->obj, IFD_FAULT);
	pthread_mutex_unlock(&ctx->lock);
	if (rc) {
		close(p[0]);
		close(p[1]);
		free(f);
		return rc;
	}
	pthread_mutex_lock(&fault_registry_lock);
	f->next_global = fault_registry;
	fault_registry = f;
	pthread_mutex_unlock(&fault_registry_lock);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[1]};
	epoll_ctl(ctx->host->svc_epfd, EPOLL_CTL_ADD, p[1], &ev);
	cmd->out_fault_id = f->obj.id;
	cmd->out_fault_fd = p[0];
	return 0;
}

static void ifd_fault_respond(struct iommufd_host *host, const struct ifd_pending *p, unsigned resp)
{
	ifd_cmd(host, smmu_cmd_resume(p->sid, p->stag, resp));
}

void ifd_fault_destroy(struct iommufd_ctx *ctx, struct ifd_fault *f)
{
	pthread_mutex_lock(&fault_registry_lock);
	for (struct ifd_fault **pp = &fault_registry; *pp; pp = &(*pp)->next_global) {
		if (*pp == f) {
			*pp = f->next_global;
			break;
		}
	}
	pthread_mutex_unlock(&fault_registry_lock);
	epoll_ctl(ctx->host->svc_epfd, EPOLL_CTL_DEL, f->wfd, NULL);
	/* Faults nobody answered fail, as the kernel's auto-response does. */
	for (unsigned i = 0; i < IFD_FAULT_MAX; i++)
		if (f->pend[i].used)
			ifd_fault_respond(ctx->host, &f->pend[i], CMD_RESUME_ABORT);
	ifd_obj_remove(ctx, &f->obj);
	close(f->wfd);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static struct ifd_pending *ifd_pending_alloc(struct ifd_fault *f)
{
	for (unsigned i = 0; i < IFD_FAULT_MAX; i++) {
		if (!f->pend[i].used) {
			f->pend[i].used = true;
			f->pend[i].cookie = f->next_cookie++;
			if (!f->next_cookie)
				f->next_cookie = 1;
			return &f->pend[i];
		}
	}
	return NULL;
}

static void ifd_pgfault_fill(struct iommu_hwpt_pgfault *pf, const struct ifd_device *dev,
			     const struct smmu_event *ev, uint32_t cookie)
{
	bool ssv = F_GET(ev->dw[0], EVT0_SSV);
	bool read = F_GET(ev->dw[1], EVT1_RNW);

	memset(pf, 0, sizeof(*pf));
	pf->flags = IOMMU_PGFAULT_FLAGS_LAST_PAGE | (ssv ? IOMMU_PGFAULT_FLAGS_PASID_VALID : 0);
	pf->dev_id = dev->obj.id;
	pf->pasid = ssv ? (uint32_t)F_GET(ev->dw[0], EVT0_SSID) : 0;
	pf->grpid = (uint32_t)F_GET(ev->dw[1], EVT1_STAG);
	pf->perm = read ? IOMMU_PGFAULT_PERM_READ : IOMMU_PGFAULT_PERM_WRITE;
	pf->addr = ev->dw[2];
	pf->length = 4096;
	pf->cookie = cookie;
}

/* Called with the host route_lock held, from the faulting thread. */
bool ifd_fault_deliver(struct iommufd_host *host, struct ifd_fault *f, struct ifd_device *dev,
		       const struct smmu_event *ev)
{
	struct iommu_hwpt_pgfault pf;
	bool ok = false;

	pthread_mutex_lock(&f->lock);
	struct ifd_pending *p = ifd_pending_alloc(f);
	if (p) {
		p->sid = dev->sid;
		p->dev_id = dev->obj.id;
		p->stag = (uint16_t)F_GET(ev->dw[1], EVT1_STAG);
		ifd_pgfault_fill(&pf, dev, ev, p->cookie);
		ok = send(f->wfd, &pf, sizeof(pf), MSG_DONTWAIT | MSG_NOSIGNAL) == sizeof(pf);
		if (!ok)
			p->used = false;
	}
	pthread_mutex_unlock(&f->lock);
	if (ok)
		host->stats.faults++;
	TRACE(iommufd_fault, "sid=%#x addr=%#llx delivered=%d", dev->sid,
	      (unsigned long long)ev->dw[2], ok);
	return ok;
}

/* One response; -EINVAL for an unknown cookie or code. Caller holds the registry lock. */
static int ifd_fault_resp_one(struct ifd_fault *f, const struct iommu_hwpt_page_response *r)
{
	struct ifd_pending p = {0};

	if (r->code != IOMMUFD_PAGE_RESP_SUCCESS && r->code != IOMMUFD_PAGE_RESP_INVALID)
		return -EINVAL;
	pthread_mutex_lock(&f->lock);
	for (unsigned i = 0; i < IFD_FAULT_MAX; i++) {
		if (f->pend[i].used && f->pend[i].cookie == r->cookie) {
			p = f->pend[i];
			f->pend[i].used = false;
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
	if (!p.used)
		return -EINVAL;
	ifd_fault_respond(f->obj.ctx->host, &p,
			  r->code == IOMMUFD_PAGE_RESP_SUCCESS ? CMD_RESUME_RETRY
							       : CMD_RESUME_ABORT);
	return 0;
}

ssize_t iommufd_fault_write(int fault_fd, const void *buf, size_t len)
{
	const struct iommu_hwpt_page_response *r = buf;
	ssize_t done = 0;
	int rc = 0;

	if (!buf || len % sizeof(*r))
		return -EINVAL;
	pthread_mutex_lock(&fault_registry_lock);
	struct ifd_fault *f = fault_registry;
	while (f && f->rfd != fault_fd)
		f = f->next_global;
	for (size_t i = 0; f && i < len / sizeof(*r); i++) {
		rc = ifd_fault_resp_one(f, &r[i]);
		if (rc)
			break;
		done += (ssize_t)sizeof(*r);
	}
	pthread_mutex_unlock(&fault_registry_lock);
	if (!f)
		return -EBADF;
	return done ? done : rc;
}

/* ---- the service thread: page responses written on the fault fd itself ---- */

static struct ifd_fault *ifd_fault_by_hostfd(int fd)
{
	struct ifd_fault *f = fault_registry;
	while (f && f->wfd != fd)
		f = f->next_global;
	return f;
}

/* Drains one fault socket; bad records are dropped (write() on the real fd would fail). */
static void ifd_svc_drain(struct iommufd_host *h, int fd)
{
	struct iommu_hwpt_page_response r[16];

	for (;;) {
		ssize_t n = recv(fd, r, sizeof(r), MSG_DONTWAIT);
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EINTR))
				epoll_ctl(h->svc_epfd, EPOLL_CTL_DEL, fd, NULL); /* VMM closed it */
			return;
		}
		pthread_mutex_lock(&fault_registry_lock);
		struct ifd_fault *f = ifd_fault_by_hostfd(fd);
		for (size_t i = 0; f && i < (size_t)n / sizeof(r[0]); i++)
			if (ifd_fault_resp_one(f, &r[i]))
				TRACE(iommufd_fault_bad_response, "cookie=%u code=%u", r[i].cookie,
				      r[i].code);
		pthread_mutex_unlock(&fault_registry_lock);
	}
}

static void *ifd_svc_main(void *arg)
{
	struct iommufd_host *h = arg;
	struct epoll_event ev[8];

	for (;;) {
		int n = epoll_wait(h->svc_epfd, ev, 8, -1);
		for (int i = 0; i < n; i++) {
			if (ev[i].data.fd == h->svc_stopfd)
				return NULL;
			ifd_svc_drain(h, ev[i].data.fd);
		}
	}
}

int ifd_svc_start(struct iommufd_host *h)
{
	int rc = 0;

	pthread_mutex_lock(&h->lock);
	if (!h->svc_on) {
		h->svc_epfd = epoll_create1(EPOLL_CLOEXEC);
		h->svc_stopfd = eventfd(0, EFD_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = h->svc_stopfd};
		if (h->svc_epfd < 0 || h->svc_stopfd < 0 ||
		    epoll_ctl(h->svc_epfd, EPOLL_CTL_ADD, h->svc_stopfd, &ev) ||
		    pthread_create(&h->svc, NULL, ifd_svc_main, h)) {
			rc = -ENOMEM;
			if (h->svc_epfd >= 0)
				close(h->svc_epfd);
			if (h->svc_stopfd >= 0)
				close(h->svc_stopfd);
		} else {
			h->svc_on = true;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

void ifd_svc_stop(struct iommufd_host *h)
{
	if (!h->svc_on)
		return;
	uint64_t one = 1;
	if (write(h->svc_stopfd, &one, sizeof(one)) != sizeof(one))
		return;
	pthread_join(h->svc, NULL);
	close(h->svc_epfd);
	close(h->svc_stopfd);
	h->svc_on = false;
}

/* ---- MSI windows ---- */

void ifd_msi_doorbell(void *opaque, uint64_t offset, const void *data, size_t len, uint32_t sid)
{
	struct ifd_msi *m = opaque;
	struct iommufd_msi_record rec = {.iova = m->iova + offset, .sid = sid};

	memcpy(&rec.data, data, MIN(len, sizeof(rec.data)));
	bool ok = write(m->wfd, &rec, sizeof(rec)) == sizeof(rec);
	__atomic_fetch_add(ok ? &m->host->stats.msis : &m->host->stats.msis_lost, 1,
			   __ATOMIC_RELAXED);
	TRACE(iommufd_msi, "iova=%#llx data=%#x sid=%#x ok=%d", (unsigned long long)rec.iova,
	      rec.data, sid, ok);
}

void ifd_msi_free(struct ifd_msi *m)
{
	hostmem_remove(m->host->hm, m->pa);
	close(m->wfd);
	free(m);
}
