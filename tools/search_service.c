/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The search service of a mounted volume. The index file is readable only
 * by those who can read the volume directory; everyone else asks the daemon
 * over a Unix socket. The daemon learns the caller from the socket
 * (SO_PEERCRED, SO_PEERGROUPS: what the kernel says, not what the caller
 * claims) and shows only what that caller could reach by walking the tree.
 *
 * The socket is in the abstract namespace, named after the volume, so a
 * daemon of any user can offer it. Anyone could bind that name first, so the
 * client checks that the peer runs as the user the mount table names as the
 * mount's owner before it believes an answer.
 *
 * Frames both ways: a type byte, a little-endian u32 length, the payload.
 *   client: 'Q' request (search_wire.c)
 *   daemon: 'O' output bytes ... then 'X' exit status byte + error text
 */
#include "search.h"
#include "tools.h"
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_REQUEST (1u << 20)
#define MAX_ACTIVE 32 /* searches at once */
#define MAX_PER_USER 4 /* searches at once for one uid */
#define REQUEST_TIMEOUT_S 10 /* to send the request after connecting */

/* ---------------------------------------------------------------- framing */

static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_frame(int fd, char type, const void *payload, size_t len)
{
	unsigned char h[5];
	h[0] = (unsigned char)type;
	put_le32(h + 1, (uint32_t)len);
	return send_all(fd, h, sizeof h) || send_all(fd, payload, len) ? -1 : 0;
}

/* Reads one frame; *payload is malloc'd (NUL-terminated for convenience). */
static int recv_frame(int fd, char *type, char **payload, size_t *len, size_t max)
{
	unsigned char h[5];
	if (recv_all(fd, h, sizeof h))
		return -1;
	uint32_t n = get_le32(h + 1);
	if (n > max)
		return -1;
	char *p = malloc((size_t)n + 1);
	if (!p)
		return -1;
	if (recv_all(fd, p, n)) {
		free(p);
		return -1;
	}
	p[n] = '\0';
	*type = (char)h[0];
	*payload = p;
	*len = n;
	return 0;
}

/* The socket's name: "\0metafs-search/" and a digest of the volume path. */
static socklen_t socket_name(const char *vol, struct sockaddr_un *a)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "metafs-search/");
	if (!EVP_Digest(vol, strlen(vol), md, &mdlen, EVP_sha256(), NULL))
		mdlen = 0;
	for (unsigned i = 0; i < 16 && i < mdlen; i++)
		n += snprintf(a->sun_path + 1 + n, sizeof a->sun_path - 1 - (size_t)n, "%02x", md[i]);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* ---------------------------------------------------------------- the daemon */

struct search_service {
	struct mfs_volume *v;
	char vol[PATH_MAX];
	int lfd;
	bool bound; /* at start; the listener binds later if the name was taken */
	int wake[2];
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t idle;
	int stopping;
	int active;
	int fds[MAX_ACTIVE];
	uid_t uids[MAX_ACTIVE];
};

struct conn {
	struct search_service *s;
	int fd;
	int slot;
	struct ucred cred;
};

static int committed_store(void *arg, uint64_t *last, char *err, size_t errlen)
{
	struct search_service *s = arg;
	uint64_t first;
	int rc = s->v->store->ops->changelog_bounds(s->v->store, &first, last);
	if (rc)
		snprintf(err, errlen, "%s: cannot read the changelog: %s", s->vol, strerror(-rc));
	return rc ? -1 : 0;
}

static ssize_t out_write(void *cookie, const char *buf, size_t len)
{
	struct conn *c = cookie;
	return send_frame(c->fd, 'O', buf, len) ? -1 : (ssize_t)len;
}

static void finish(struct conn *c, int status, const char *err)
{
	size_t n = strlen(err);
	char *p = malloc(n + 1);
	if (p) {
		p[0] = (char)status;
		memcpy(p + 1, err, n);
		send_frame(c->fd, 'X', p, n + 1);
		free(p);
	}
}

/* The caller's supplementary groups, as the kernel recorded them at connect. */
static gid_t *peer_groups(int fd, int *n)
{
	socklen_t len = 64 * sizeof(gid_t);
	for (int tries = 0; tries < 3; tries++) {
		gid_t *g = malloc(len ? len : sizeof(gid_t));
		if (!g)
			return NULL;
		socklen_t got = len;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &got) == 0) {
			*n = (int)(got / sizeof(gid_t));
			return g;
		}
		free(g);
		if (errno != ERANGE)
			return NULL;
		len = got; /* the size it needs */
	}
	return NULL;
}

static void *serve_conn(void *arg)
{
	struct conn *c = arg;
	struct search_service *s = c->s;
	char type, *req = NULL;
	size_t len;
	int ngroups = 0;
	gid_t *groups = NULL;
	struct find_request rq;
	struct timeval tv = { .tv_sec = REQUEST_TIMEOUT_S };
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (recv_frame(c->fd, &type, &req, &len, MAX_REQUEST) || type != 'Q' || search_request_decode(req, len, &rq)) {
		finish(c, 2, "the search service could not read the request (a metafs of another version?)");
		goto out;
	}
	groups = peer_groups(c->fd, &ngroups);
	if (!groups) {
		finish(c, 1, "the search service cannot learn the caller's groups");
		goto out_rq;
	}
	struct who w = { .root = c->cred.uid == 0, .uid = c->cred.uid, .gid = c->cred.gid, .groups = groups,
			 .ngroups = ngroups };
	rq.cancel = &s->stopping;
	FILE *out = fopencookie(c, "w", (cookie_io_functions_t){ .write = out_write });
	if (!out) {
		finish(c, 1, "the search service is out of memory");
		goto out_rq;
	}
	setvbuf(out, NULL, _IOFBF, 1 << 16);
	char err[2048] = "";
	int status = search_run(&rq, &w, s->vol, s->v, committed_store, s, out, err, sizeof err);
	bool lost = fflush(out) != 0 || ferror(out);
	fclose(out);
	if (!lost)
		finish(c, status, err);
out_rq:
	free((void *)rq.under);
out:
	free(groups);
	free(req);
	/* closed under the lock: stop must not shut down a number reused since */
	pthread_mutex_lock(&s->mu);
	close(c->fd);
	s->fds[c->slot] = -1;
	s->active--;
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->mu);
	free(c);
	return NULL;
}

static void refuse(int fd, const char *why)
{
	struct conn c = { .fd = fd };
	struct timeval tv = { .tv_sec = 1 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	finish(&c, 1, why);
	close(fd);
}

static void accept_one(struct search_service *s)
{
	int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct ucred cred;
	socklen_t cl = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&s->mu);
	int mine = 0, slot = -1;
	for (int i = 0; i < MAX_ACTIVE; i++) {
		if (s->fds[i] < 0)
			slot = slot < 0 ? i : slot;
		else
			mine += s->uids[i] == cred.uid;
	}
	if (slot < 0 || mine >= MAX_PER_USER) {
		pthread_mutex_unlock(&s->mu);
		refuse(fd, slot < 0 ? "the search service is busy; try again"
				    : "too many searches of this user are running; try again when one ends");
		return;
	}
	struct conn *c = calloc(1, sizeof *c);
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (c) {
		*c = (struct conn){ .s = s, .fd = fd, .slot = slot, .cred = cred };
		s->fds[slot] = fd;
		s->uids[slot] = cred.uid;
		s->active++;
		if (pthread_create(&t, &attr, serve_conn, c) != 0) {
			s->fds[slot] = -1;
			s->active--;
			free(c);
			c = NULL;
		}
	}
	pthread_attr_destroy(&attr);
	pthread_mutex_unlock(&s->mu);
	if (!c)
		refuse(fd, "the search service cannot start a search (out of memory or threads)");
}

/* Binds the socket name; 0, or -errno. */
static int bind_listen(struct search_service *s)
{
	struct sockaddr_un a;
	socklen_t alen = socket_name(s->vol, &a);
	if (bind(s->lfd, (struct sockaddr *)&a, alen) != 0 || listen(s->lfd, 64) != 0)
		return -errno;
	log_info("search service listening at @%s", a.sun_path + 1);
	return 0;
}

static void *accept_loop(void *arg)
{
	struct search_service *s = arg;
	bool bound = s->bound;
	for (;;) {
		/* a name someone else holds is tried again every few seconds */
		struct pollfd p[2] = { { .fd = s->wake[0], .events = POLLIN }, { .fd = s->lfd, .events = POLLIN } };
		int rc = poll(p, bound ? 2 : 1, bound ? -1 : 5000);
		if (rc < 0 && errno != EINTR) {
			log_error("search service: poll: %s", strerror(errno));
			return NULL;
		}
		if (rc > 0 && p[0].revents)
			return NULL;
		if (!bound)
			bound = bind_listen(s) == 0;
		else if (rc > 0 && p[1].revents)
			accept_one(s);
	}
}

int search_service_start(struct mfs_volume *v, const char *vol, struct search_service **out)
{
	struct search_service *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->v = v;
	snprintf(s->vol, sizeof s->vol, "%s", vol);
	for (int i = 0; i < MAX_ACTIVE; i++)
		s->fds[i] = -1;
	s->wake[0] = s->wake[1] = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->idle, NULL);
	int rc = 0;
	s->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || pipe2(s->wake, O_CLOEXEC) != 0) {
		rc = -errno;
		goto fail;
	}
	rc = bind_listen(s);
	if (rc == -EADDRINUSE) {
		struct sockaddr_un a;
		socket_name(vol, &a);
		log_error("search service: another process holds the socket name @%s; users who cannot read the "
			  "index cannot search this volume until it is gone (tried again every 5 s)",
			  a.sun_path + 1);
	} else if (rc) {
		goto fail;
	}
	s->bound = rc == 0;
	rc = pthread_create(&s->thread, NULL, accept_loop, s);
	if (rc) {
		rc = -rc;
		goto fail;
	}
	*out = s;
	return 0;
fail:
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->wake[0] >= 0) {
		close(s->wake[0]);
		close(s->wake[1]);
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->idle);
	free(s);
	return rc;
}

void search_service_stop(struct search_service *s)
{
	if (!s)
		return;
	if (write(s->wake[1], "x", 1) != 1)
		log_warn("search service: cannot wake the listener: %s", strerror(errno));
	pthread_join(s->thread, NULL);
	close(s->lfd);
	pthread_mutex_lock(&s->mu);
	__atomic_store_n(&s->stopping, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < MAX_ACTIVE; i++)
		if (s->fds[i] >= 0)
			shutdown(s->fds[i], SHUT_RDWR);
	while (s->active > 0)
		pthread_cond_wait(&s->idle, &s->mu);
	pthread_mutex_unlock(&s->mu);
	close(s->wake[0]);
	close(s->wake[1]);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->idle);
	free(s);
}

/* ---------------------------------------------------------------- the client */

int search_remote(const char *vol, uid_t daemon_uid, const struct find_request *rq, char *err, size_t errlen)
{
	struct sockaddr_un a;
	socklen_t alen = socket_name(vol, &a);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open a socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&a, alen) != 0) {
		snprintf(err, errlen,
			 "cannot read the search index of %s (permission denied), and the mount's daemon offers no "
			 "search service (@%s: %s)",
			 vol, a.sun_path + 1, strerror(errno));
		close(fd);
		return -1;
	}
	struct ucred cred;
	socklen_t cl = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || cred.uid != daemon_uid) {
		snprintf(err, errlen,
			 "refusing the search service at @%s: it runs as uid %u, but the mount's daemon runs as uid %u",
			 a.sun_path + 1, (unsigned)cred.uid, (unsigned)daemon_uid);
		close(fd);
		return -1;
	}
	size_t len;
	char *req = search_request_encode(rq, &len);
	if (!req || send_frame(fd, 'Q', req, len)) {
		snprintf(err, errlen, "cannot send the search to the daemon of %s: %s", vol,
			 req ? strerror(errno) : "out of memory");
		free(req);
		close(fd);
		return -1;
	}
	free(req);
	int status = -1;
	for (;;) {
		char type, *p;
		size_t n;
		if (recv_frame(fd, &type, &p, &n, UINT32_MAX)) {
			snprintf(err, errlen, "the daemon of %s ended the search without an answer (was it unmounted?)",
				 vol);
			status = 1;
			break;
		}
		if (type == 'O') {
			size_t w = fwrite(p, 1, n, stdout);
			free(p);
			if (w != n) {
				status = 0; /* the reader went away, as with a local search */
				break;
			}
			continue;
		}
		if (type == 'X' && n >= 1) {
			status = (unsigned char)p[0];
			snprintf(err, errlen, "%s", p + 1);
		} else {
			snprintf(err, errlen, "the daemon of %s sent a frame this metafs does not know", vol);
			status = 1;
		}
		free(p);
		break;
	}
	fflush(stdout);
	close(fd);
	return status;
}
