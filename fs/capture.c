/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Provenance capture.
 *
 * A FUSE request carries the caller's thread id. A process is known by
 * (pid, start time) from /proc/TID/stat, so a reused pid is a new process:
 * a thread seen before is known again while a pidfd of it polls quiet (it
 * has not ended, so its id was not reused). An exec makes a new process
 * too (same pid and start time, a new program), which a shell's or job
 * runner's thread is checked for at each request (its executable); the
 * thread of any other program keeps its process until it ends. Processes
 * are read from /proc when they first open a file, while they are sure to
 * be alive: a short-lived one may be gone by the time its last close
 * arrives.
 */
#include "capture.h"
#include "common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9: a pidfd for one thread */
#endif

#define TID_SLOTS 4096
#define PROC_SLOTS 4096
#define DIR_SLOTS 1024
#define TID_MAX 2048 /* remembered threads (each holding a pidfd) before the table is swept */
#define USED_MAX (1u << 16) /* versions a process remembers having used */
#define PARENT_DEPTH 32
#define ARGV_MAX (64u << 10)

struct tid_ent {
	uint32_t tid;
	/* a pidfd for the thread, -1 where the kernel has none: while it
	 * polls quiet the thread is alive, so its id was not reused */
	int pidfd;
	uint64_t start_ticks; /* the thread's */
	char comm[17];
	struct cap_proc *proc; /* referenced */
	struct tid_ent *next;
};

struct dir_ent {
	uint64_t ino;
	uint64_t gen;
	bool on;
	struct dir_ent *next;
};

/* A process seen reading one pipe and writing another: data in `out` may
 * come from what was read from `in` (the middle of `cat a | sort | tr`). */
struct pipe_link {
	uint64_t out, in;
};
#define PIPE_LINKS 4096
#define PIPE_SLOTS 1024
#define PIPE_SCANNED 256
#define RESCAN_NS 1000000000LL /* a pipe's pipeline is looked at once a second at most */

/* A use whose record waits (see capture_used): p referenced. */
struct cap_pending {
	struct cap_proc *p;
	uint64_t ino, version, seq;
	int64_t time_ns;
	bool marked_p, marked_job; /* their recorded flags were set for it */
	bool fresh; /* p's memory of its uses says it is its first */
};
#define PENDING_MAX 1024 /* uses waiting before the one that adds them records them */
#define PENDING_LIMIT 65536 /* past this many (the store failing), uses are not deferred */
#define FLUSH_NS 100000000LL /* a use waits this long at most (the store working) */

struct capture {
	struct mfs_volume *vol;
	/* uses waiting to be recorded, oldest first; guarded by lock */
	struct cap_pending *pending;
	size_t npending, cappending;
	pthread_t flusher;
	bool flusher_running, stopping; /* stopping: guarded by lock */
	pthread_cond_t flush_cv;
	struct pipe_link links[PIPE_LINKS]; /* open addressing by out; guarded by lock */
	size_t nlinks;
	/* when /proc was last scanned for a process on each pipe (direct
	 * mapped): the children of `make` share its standard input, and one
	 * scan serves them all; guarded by lock */
	struct {
		uint64_t pipe;
		int64_t when;
	} scanned[PIPE_SCANNED];
	pthread_mutex_t lock;
	struct tid_ent *tids[TID_SLOTS];
	size_t ntids;
	struct cap_proc *procs[PROC_SLOTS]; /* by pid */
	/* those whose standard output is a pipe, by pipe: the processes
	 * feeding a pipe another one reads */
	struct cap_proc *by_pipe[PIPE_SLOTS];
	int64_t boot_ns; /* wall clock at boot, for start times */
	long ticks;
	pid_t self;
	size_t npidfds, pidfd_max; /* pidfds held, and how many may be */

	pthread_mutex_t dir_lock;
	struct dir_ent *dirs[DIR_SLOTS];
	size_t ndirs;
	_Atomic uint64_t gen;
};

/* ---------------------------------------------------------------- /proc */

struct stat_line {
	char comm[17];
	uint32_t ppid;
	uint64_t start_ticks;
};

static int read_file(const char *path, char *buf, size_t size, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t n = 0;
	while (n < size) {
		ssize_t r = read(fd, buf + n, size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return 0;
}

/* /proc/PID/WHAT into buf, NUL-terminated (at most size - 1 bytes read). */
static int read_proc(uint32_t pid, const char *what, char *buf, size_t size, size_t *len)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%u/%s", pid, what);
	int rc = read_file(path, buf, size - 1, len);
	if (!rc)
		buf[*len] = '\0';
	return rc;
}

static int read_stat(uint32_t pid, struct stat_line *out)
{
	char buf[1024];
	size_t len;
	int rc = read_proc(pid, "stat", buf, sizeof buf, &len);
	if (rc)
		return rc;
	/* the command name is in parentheses and may hold anything, ")" too */
	char *open_p = strchr(buf, '('), *close_p = strrchr(buf, ')');
	if (!open_p || !close_p || close_p < open_p)
		return -EIO;
	size_t cl = (size_t)(close_p - open_p - 1);
	if (cl > 16)
		cl = 16;
	memcpy(out->comm, open_p + 1, cl);
	out->comm[cl] = '\0';
	/* fields 3.. after the name: state ppid ... starttime is field 22 */
	char *p = close_p + 2;
	int field = 3;
	char *save = NULL;
	for (char *tok = strtok_r(p, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
		if (field == 4)
			out->ppid = (uint32_t)strtoul(tok, NULL, 10);
		if (field == 22) {
			out->start_ticks = strtoull(tok, NULL, 10);
			return 0;
		}
	}
	return -EIO;
}

static bool read_link_buf(uint32_t pid, const char *what, char *buf, size_t size)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%u/%s", pid, what);
	ssize_t n = readlink(path, buf, size - 1);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return true;
}

static char *read_link(uint32_t pid, const char *what)
{
	char buf[PATH_MAX];
	return read_link_buf(pid, what, buf, sizeof buf) ? strdup(buf) : NULL;
}

/* The pipe inode on a descriptor of a process, 0 if it is not a pipe. */
static uint64_t pipe_of(uint32_t pid, int fd)
{
	char what[32];
	snprintf(what, sizeof what, "fd/%d", fd);
	char *l = read_link(pid, what);
	uint64_t ino = 0;
	if (l && !strncmp(l, "pipe:[", 6))
		ino = strtoull(l + 6, NULL, 10);
	free(l);
	return ino;
}

struct status_line {
	uint32_t tgid, uid, gid;
};

static int read_status(uint32_t tid, struct status_line *out)
{
	char buf[4096];
	size_t len;
	int rc = read_proc(tid, "status", buf, sizeof buf, &len);
	if (rc)
		return rc;
	char *t = strstr(buf, "\nTgid:"), *u = strstr(buf, "\nUid:"), *g = strstr(buf, "\nGid:");
	if (!t || !u || !g)
		return -EIO;
	out->tgid = (uint32_t)strtoul(t + 6, NULL, 10);
	/* the effective ids: the ones the process acts with */
	char *end;
	strtoul(u + 5, &end, 10);
	out->uid = (uint32_t)strtoul(end, NULL, 10);
	strtoul(g + 5, &end, 10);
	out->gid = (uint32_t)strtoul(end, NULL, 10);
	return 0;
}

static char *read_argv(uint32_t pid, size_t *len)
{
	char *buf = malloc(ARGV_MAX + 1);
	if (!buf)
		return NULL;
	size_t n;
	if (read_proc(pid, "cmdline", buf, ARGV_MAX + 1, &n)) {
		free(buf);
		return NULL;
	}
	/* each argument ends with a NUL; a cut-off last one gets the one
	 * read_proc put after it */
	if (n > 0 && buf[n - 1] != '\0')
		n++;
	*len = n;
	return buf;
}

static const char *base_name(const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;
	return s ? s + 1 : path ? path : "";
}

/* Programs that start other programs for someone else: a use by one of
 * their children is not a use of theirs, so a job stops below them. */
static bool is_runner(const char *exe, const char *comm)
{
	static const char *const names[] = {
		"sh", "bash", "dash", "zsh", "ksh", "mksh", "ksh93", "fish", "tcsh", "csh", "busybox",
		"make", "gmake", "ninja", "xargs", "nohup", "timeout", "time", "sudo", "su", "env",
		"setsid", "nice", "ionice", "chroot", "unshare", "nsenter", "runuser", "systemd", "init",
		"sshd", "login", "tmux", "screen", "strace", "ltrace", "parallel", "watch", "flock",
	};
	const char *b = base_name(exe);
	for (size_t i = 0; i < MFS_ARRAY_LEN(names); i++)
		if (!strcmp(b, names[i]) || !strcmp(comm, names[i]))
			return true;
	/* versioned names: bash5.2, python3 is not a runner */
	return !strncmp(b, "bash", 4) || !strncmp(b, "tmux", 4);
}

/* ---------------------------------------------------------------- processes */

static void *flusher_main(void *arg);
static int flush_pending(struct capture *c);

int capture_create(struct mfs_volume *v, struct capture **out)
{
	struct capture *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->vol = v;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->dir_lock, NULL);
	mfs_cond_init_monotonic(&c->flush_cv);
	c->ticks = sysconf(_SC_CLK_TCK);
	if (c->ticks <= 0)
		c->ticks = 100;
	struct timespec rt, bt;
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	c->boot_ns = ((int64_t)rt.tv_sec - bt.tv_sec) * 1000000000LL + (rt.tv_nsec - bt.tv_nsec);
	c->self = getpid();
	/* pidfds take descriptors: a quarter of what the process may open,
	 * after raising its soft limit to the hard one */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
				getrlimit(RLIMIT_NOFILE, &rl);
		}
		c->pidfd_max = rl.rlim_cur == RLIM_INFINITY ? TID_MAX : (size_t)(rl.rlim_cur / 4);
		if (c->pidfd_max > TID_MAX)
			c->pidfd_max = TID_MAX;
	}
	/* only a volume no other mount changes defers uses (capture_used's
	 * trust), but the thread costs nothing while none waits */
	c->flusher_running = pthread_create(&c->flusher, NULL, flusher_main, c) == 0;
	*out = c;
	return 0;
}

static void proc_free(struct capture *c, struct cap_proc *p);

/* c->lock held */
static void proc_unref(struct capture *c, struct cap_proc *p)
{
	while (p && --p->refs == 0) {
		struct cap_proc **pp = &c->procs[p->p.pid % PROC_SLOTS];
		while (*pp && *pp != p)
			pp = &(*pp)->next;
		if (*pp)
			*pp = p->next;
		if (p->pipe_out) {
			pp = &c->by_pipe[p->pipe_out % PIPE_SLOTS];
			while (*pp && *pp != p)
				pp = &(*pp)->next_pipe;
			if (*pp)
				*pp = p->next_pipe;
		}
		struct cap_proc *job = p->job;
		proc_free(c, p);
		p = job;
	}
}

static void proc_free(struct capture *c, struct cap_proc *p)
{
	(void)c;
	prov_proc_free(&p->p);
	free(p->used.v);
	free(p);
}

void capture_put(struct capture *c, struct cap_proc *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&c->lock);
	proc_unref(c, p);
	pthread_mutex_unlock(&c->lock);
}

struct cap_proc *capture_ref(struct capture *c, struct cap_proc *p)
{
	if (p) {
		pthread_mutex_lock(&c->lock);
		p->refs++;
		pthread_mutex_unlock(&c->lock);
	}
	return p;
}

static bool same_argv(const struct cap_proc *p, const char *argv, size_t len)
{
	return p->p.argv_len == len && (len == 0 || !memcmp(p->p.argv, argv, len));
}

/* c->lock held */
static void link_add(struct capture *c, uint64_t out, uint64_t in)
{
	if (!out || !in || out == in)
		return;
	if (c->nlinks * 2 >= PIPE_LINKS) {
		memset(c->links, 0, sizeof c->links);
		c->nlinks = 0;
	}
	size_t i = (size_t)(out * 0x9E3779B97F4A7C15ULL >> 20) & (PIPE_LINKS - 1);
	while (c->links[i].out && c->links[i].out != out)
		i = (i + 1) & (PIPE_LINKS - 1);
	if (!c->links[i].out)
		c->nlinks++;
	c->links[i] = (struct pipe_link){ out, in };
}

/* c->lock held */
static uint64_t link_in(struct capture *c, uint64_t out)
{
	size_t i = (size_t)(out * 0x9E3779B97F4A7C15ULL >> 20) & (PIPE_LINKS - 1);
	while (c->links[i].out) {
		if (c->links[i].out == out)
			return c->links[i].in;
		i = (i + 1) & (PIPE_LINKS - 1);
	}
	return 0;
}

/* Notes which pipes every running process reads and writes, for a process
 * found on a pipe: its neighbours in a pipeline may never touch the
 * volume, and may be gone by the time the last one closes its output. */
static void scan_pipelines(struct capture *c)
{
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct pipe_link found[512];
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < MFS_ARRAY_LEN(found)) {
		char *end;
		unsigned long pid = strtoul(de->d_name, &end, 10);
		if (*end || !pid || pid == (unsigned long)c->self)
			continue;
		uint64_t in = pipe_of((uint32_t)pid, 0);
		uint64_t out = in ? pipe_of((uint32_t)pid, 1) : 0;
		if (in && out)
			found[n++] = (struct pipe_link){ out, in };
	}
	closedir(d);
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n; i++)
		link_add(c, found[i].out, found[i].in);
	pthread_mutex_unlock(&c->lock);
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Whether the pipelines of a process on pipes in and out are to be looked
 * at: not when both were, less than RESCAN_NS ago. Notes them looked at. */
static bool pipes_need_scan(struct capture *c, uint64_t in, uint64_t out)
{
	int64_t now = mono_ns();
	bool need = false;
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < 2; i++) {
		uint64_t pipe = i ? out : in;
		if (!pipe)
			continue;
		size_t slot = (size_t)(pipe * 0x9E3779B97F4A7C15ULL >> 32) % PIPE_SCANNED;
		if (c->scanned[slot].pipe != pipe || now - c->scanned[slot].when >= RESCAN_NS) {
			need = true;
			c->scanned[slot].pipe = pipe;
			c->scanned[slot].when = now;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return need;
}

/* c->lock held: a known process with this identity and image */
static struct cap_proc *find_proc(struct capture *c, uint32_t pid, uint64_t start, const char *exe,
				  const char *argv, size_t argv_len)
{
	for (struct cap_proc *p = c->procs[pid % PROC_SLOTS]; p; p = p->next)
		if (p->p.pid == pid && p->start_ticks == start && p->p.exe && !strcmp(p->p.exe, exe) &&
		    (!argv || same_argv(p, argv, argv_len)))
			return p;
	return NULL;
}

/* Reads process pid (a thread group leader) from /proc; referenced. */
static struct cap_proc *proc_read(struct capture *c, uint32_t pid, int depth)
{
	struct stat_line st;
	if (pid == 0 || read_stat(pid, &st))
		return NULL;
	char *exe = read_link(pid, "exe");
	if (!exe)
		return NULL; /* a kernel thread, or gone */
	size_t argv_len = 0;
	char *argv = read_argv(pid, &argv_len);
	pthread_mutex_lock(&c->lock);
	struct cap_proc *p = find_proc(c, pid, st.start_ticks, exe, argv ? argv : "", argv ? argv_len : 0);
	if (p) {
		p->refs++;
		pthread_mutex_unlock(&c->lock);
		free(exe);
		free(argv);
		return p;
	}
	pthread_mutex_unlock(&c->lock);

	struct status_line sl = { 0 };
	read_status(pid, &sl);
	p = calloc(1, sizeof *p);
	if (!p) {
		free(exe);
		free(argv);
		return NULL;
	}
	p->refs = 1;
	p->start_ticks = st.start_ticks;
	p->p.pid = pid;
	p->p.ppid = st.ppid;
	p->p.uid = sl.uid;
	p->p.gid = sl.gid;
	p->p.start_ns = c->boot_ns + (int64_t)(st.start_ticks * (1000000000ULL / (uint64_t)c->ticks));
	p->p.exe = exe;
	p->p.argv = argv;
	p->p.argv_len = argv ? argv_len : 0;
	p->p.cwd = read_link(pid, "cwd");
	p->runner = is_runner(exe, "");
	p->pipe_in = pipe_of(pid, 0);
	p->pipe_out = pipe_of(pid, 1);
	if ((p->pipe_in || p->pipe_out) && pipes_need_scan(c, p->pipe_in, p->pipe_out))
		scan_pipelines(c);
	struct cap_proc *parent = NULL;
	if (st.ppid > 1 && depth < PARENT_DEPTH && st.ppid != (uint32_t)c->self)
		parent = proc_read(c, st.ppid, depth + 1);
	int rc = c->vol->store->ops->ino_alloc(c->vol->store, &p->p.id);
	pthread_mutex_lock(&c->lock);
	/* another thread may have read the same process meanwhile */
	struct cap_proc *other = rc ? NULL : find_proc(c, pid, st.start_ticks, exe, p->p.argv ? p->p.argv : "",
						       p->p.argv_len);
	if (rc || other) {
		if (other)
			other->refs++;
		if (parent)
			proc_unref(c, parent);
		pthread_mutex_unlock(&c->lock);
		proc_free(c, p);
		return other;
	}
	/* the image this one replaced (an exec: the same pid and start
	 * time), whose job goes on: a shell's child opens `< in` and `> out`
	 * before it execs the command, which reads and writes them */
	struct cap_proc *before = NULL;
	for (struct cap_proc *q = c->procs[pid % PROC_SLOTS]; q && !before; q = q->next)
		if (q->p.pid == pid && q->start_ticks == st.start_ticks)
			before = q;
	if (before) {
		p->job = before->job ? before->job : before;
		p->job->refs++;
	}
	if (parent) {
		p->p.parent = parent->p.id;
		p->p.parent_start_ns = parent->p.start_ns;
		if (!before && !parent->runner) {
			p->job = parent->job ? parent->job : parent;
			p->job->refs++;
		}
		proc_unref(c, parent);
	}
	p->p.job = p->job ? p->job->p.id : p->p.id;
	struct cap_proc **slot = &c->procs[pid % PROC_SLOTS];
	p->next = *slot;
	*slot = p;
	if (p->pipe_out) {
		slot = &c->by_pipe[p->pipe_out % PIPE_SLOTS];
		p->next_pipe = *slot;
		*slot = p;
	}
	pthread_mutex_unlock(&c->lock);
	return p;
}

/* c->lock held: forgets every thread (their processes stay while used) */
static void sweep_tids(struct capture *c)
{
	for (size_t i = 0; i < TID_SLOTS; i++) {
		struct tid_ent *e = c->tids[i];
		while (e) {
			struct tid_ent *next = e->next;
			proc_unref(c, e->proc);
			if (e->pidfd >= 0) {
				close(e->pidfd);
				c->npidfds--;
			}
			free(e);
			e = next;
		}
		c->tids[i] = NULL;
	}
	c->ntids = 0;
}

/* Whether a thread's pidfd says it is still running. */
static bool pidfd_alive(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	return poll(&pfd, 1, 0) == 0;
}

struct cap_proc *capture_proc(struct capture *c, uint32_t tid)
{
	if (tid == 0 || tid == (uint32_t)c->self)
		return NULL;
	/* a thread seen before and still alive (its pidfd is quiet), of a
	 * program other than a shell or job runner: known without reading
	 * /proc again. Such a program rarely execs another, and if it does
	 * the new one goes on with its job (see proc_read): only the name a
	 * use is shown under would be the older program's. */
	pthread_mutex_lock(&c->lock);
	struct tid_ent **slot = &c->tids[tid % TID_SLOTS], *e;
	for (e = *slot; e; e = e->next)
		if (e->tid == tid)
			break;
	if (e && e->pidfd >= 0 && !e->proc->runner && pidfd_alive(e->pidfd)) {
		struct cap_proc *p = e->proc;
		p->refs++;
		pthread_mutex_unlock(&c->lock);
		return p;
	}
	pthread_mutex_unlock(&c->lock);
	char exe[PATH_MAX];
	if (!read_link_buf(tid, "exe", exe, sizeof exe))
		return NULL; /* a kernel thread, or gone */
	/* a shell or runner, still alive and running the same program (an
	 * exec changes it: `cmd > f` opens f in the shell's child, which
	 * then becomes cmd). The executable is read first: if the thread was
	 * alive at the poll, the link read before belonged to it. */
	pthread_mutex_lock(&c->lock);
	slot = &c->tids[tid % TID_SLOTS];
	for (e = *slot; e; e = e->next)
		if (e->tid == tid)
			break;
	if (e && e->pidfd >= 0 && e->proc->p.exe && !strcmp(e->proc->p.exe, exe) && pidfd_alive(e->pidfd)) {
		struct cap_proc *p = e->proc;
		p->refs++;
		pthread_mutex_unlock(&c->lock);
		return p;
	}
	pthread_mutex_unlock(&c->lock);

	/* opened before /proc is read: a pidfd of a thread that ended first
	 * is not quiet, and the entry is read again next time */
	pthread_mutex_lock(&c->lock);
	bool room = c->npidfds < c->pidfd_max;
	pthread_mutex_unlock(&c->lock);
	int pidfd = room ? pidfd_open((pid_t)tid, PIDFD_THREAD) : -1;
	struct stat_line st;
	if (read_stat(tid, &st))
		goto fail;
	pthread_mutex_lock(&c->lock);
	for (e = *slot; e; e = e->next)
		if (e->tid == tid)
			break;
	/* without a pidfd, the start time and the command name stand in */
	if (e && e->pidfd < 0 && pidfd < 0 && e->start_ticks == st.start_ticks && !strcmp(e->comm, st.comm) &&
	    e->proc->p.exe && !strcmp(e->proc->p.exe, exe)) {
		struct cap_proc *p = e->proc;
		p->refs++;
		pthread_mutex_unlock(&c->lock);
		return p;
	}
	pthread_mutex_unlock(&c->lock);

	/* a new thread, a reused id, or an exec: read the process again */
	struct status_line sl;
	if (read_status(tid, &sl) || sl.tgid == (uint32_t)c->self)
		goto fail;
	struct cap_proc *p = proc_read(c, sl.tgid, 0);
	if (!p)
		goto fail;
	pthread_mutex_lock(&c->lock);
	for (e = *slot; e; e = e->next)
		if (e->tid == tid)
			break;
	if (!e) {
		if (c->ntids >= TID_MAX) {
			sweep_tids(c);
			slot = &c->tids[tid % TID_SLOTS];
		}
		e = calloc(1, sizeof *e);
		if (e) {
			e->tid = tid;
			e->pidfd = -1;
			e->next = *slot;
			*slot = e;
			c->ntids++;
		}
	} else {
		proc_unref(c, e->proc);
	}
	if (e) {
		e->start_ticks = st.start_ticks;
		memcpy(e->comm, st.comm, sizeof e->comm);
		e->proc = p;
		p->refs++;
		if (e->pidfd >= 0) {
			close(e->pidfd);
			c->npidfds--;
		}
		e->pidfd = pidfd;
		c->npidfds += pidfd >= 0;
		pidfd = -1;
	}
	pthread_mutex_unlock(&c->lock);
	if (pidfd >= 0)
		close(pidfd);
	return p;
fail:
	if (pidfd >= 0)
		close(pidfd);
	return NULL;
}

void capture_destroy(struct capture *c)
{
	if (!c)
		return;
	if (c->flusher_running) {
		pthread_mutex_lock(&c->lock);
		c->stopping = true;
		pthread_cond_signal(&c->flush_cv);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->flusher, NULL);
	}
	/* what still waits, then what cannot be recorded is dropped */
	flush_pending(c);
	pthread_mutex_lock(&c->lock);
	if (c->npending)
		log_error("lineage: %zu uses of files could not be recorded", c->npending);
	for (size_t i = 0; i < c->npending; i++)
		proc_unref(c, c->pending[i].p);
	free(c->pending);
	sweep_tids(c);
	pthread_mutex_unlock(&c->lock);
	for (size_t i = 0; i < DIR_SLOTS; i++) {
		struct dir_ent *d = c->dirs[i];
		while (d) {
			struct dir_ent *next = d->next;
			free(d);
			d = next;
		}
	}
	/* processes still referenced by open handles are freed with them */
	pthread_mutex_destroy(&c->dir_lock);
	pthread_cond_destroy(&c->flush_cv);
	free(c);
}

/* ---------------------------------------------------------------- records */

/* c->lock held */
static size_t used_slot(const struct used_set *s, uint64_t ino, uint64_t version)
{
	size_t mask = s->cap - 1;
	size_t i = (size_t)((ino * 0x9E3779B97F4A7C15ULL) ^ version) & mask;
	while (s->v[2 * i] && (s->v[2 * i] != ino || s->v[2 * i + 1] != version))
		i = (i + 1) & mask;
	return i;
}

/* c->lock held */
static bool used_has(const struct used_set *s, uint64_t ino, uint64_t version)
{
	return s->cap && s->v[2 * used_slot(s, ino, version)];
}

/* c->lock held; a full set starts again (the store still holds one record
 * per version) */
static void used_add(struct used_set *s, uint64_t ino, uint64_t version)
{
	if (2 * (s->n + 1) > s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		uint64_t *v = cap <= 2 * USED_MAX ? calloc(cap, 2 * sizeof *v) : NULL;
		if (!v) {
			if (s->cap)
				memset(s->v, 0, s->cap * 2 * sizeof *s->v);
			s->n = 0;
			s->forgot = true;
			if (!s->cap)
				return;
		} else {
			struct used_set old = *s;
			*s = (struct used_set){ v, 0, cap, old.forgot };
			for (size_t i = 0; i < old.cap; i++)
				if (old.v[2 * i])
					used_add(s, old.v[2 * i], old.v[2 * i + 1]);
			free(old.v);
		}
	}
	size_t i = used_slot(s, ino, version);
	if (!s->v[2 * i]) {
		s->v[2 * i] = ino;
		s->v[2 * i + 1] = version;
		s->n++;
	}
}

/* ---------------------------------------------------------------- uses waiting */

void capture_take_uses(struct capture *c, struct cap_uses *u)
{
	*u = (struct cap_uses){ NULL, 0, NULL };
	pthread_mutex_lock(&c->lock);
	size_t n = c->npending;
	struct prov_use_rec *recs = n ? malloc(n * sizeof *recs) : NULL;
	if (recs) {
		u->taken = c->pending;
		u->n = n;
		u->uses = recs;
		c->pending = NULL;
		c->npending = c->cappending = 0;
		for (size_t i = 0; i < n; i++) {
			struct cap_pending *w = &u->taken[i];
			struct cap_proc *job = w->p->job ? w->p->job : w->p;
			/* the first of them to name a process not yet recorded
			 * writes its record */
			w->marked_p = !w->p->recorded;
			w->p->recorded = true;
			w->marked_job = job != w->p && !job->recorded;
			job->recorded = true;
			recs[i] = (struct prov_use_rec){ &w->p->p, &job->p, w->ino, w->version, w->seq, w->time_ns,
							 w->marked_p, w->marked_job, w->fresh };
		}
	}
	pthread_mutex_unlock(&c->lock);
}

void capture_uses_done(struct capture *c, struct cap_uses *u, int rc)
{
	if (!u->n)
		return;
	pthread_mutex_lock(&c->lock);
	if (rc) {
		/* not recorded: they wait again, ahead of those added since */
		size_t n = u->n + c->npending;
		struct cap_pending *v = malloc(n * sizeof *v);
		for (size_t i = 0; v && i < u->n; i++) {
			struct cap_pending *w = &u->taken[i];
			struct cap_proc *job = w->p->job ? w->p->job : w->p;
			if (w->marked_p)
				w->p->recorded = false;
			if (w->marked_job)
				job->recorded = false;
			v[i] = *w;
		}
		if (v) {
			if (c->npending)
				memcpy(v + u->n, c->pending, c->npending * sizeof *v);
			free(c->pending);
			c->pending = v;
			c->npending = c->cappending = n;
			free(u->taken);
		} else {
			for (size_t i = 0; i < u->n; i++)
				proc_unref(c, u->taken[i].p);
			free(u->taken);
			log_error("lineage: %zu uses of files could not be recorded: out of memory", u->n);
		}
	} else {
		for (size_t i = 0; i < u->n; i++)
			proc_unref(c, u->taken[i].p);
		free(u->taken);
	}
	pthread_mutex_unlock(&c->lock);
	free(u->uses);
	*u = (struct cap_uses){ NULL, 0, NULL };
}

/* Records the uses that wait, in one transaction; 0, or why not (they
 * wait again). */
static int flush_pending(struct capture *c)
{
	struct cap_uses u;
	capture_take_uses(c, &u);
	if (!u.n)
		return 0;
	int rc = ns_prov_uses(c->vol, u.uses, u.n);
	if (rc)
		log_error("lineage: cannot record %zu uses of files (they wait): %s", u.n, strerror(-rc));
	capture_uses_done(c, &u, rc);
	return rc;
}

static void *flusher_main(void *arg)
{
	struct capture *c = arg;
	unsigned fails = 0; /* in a row: the wait doubles, to 6.4 s */
	pthread_mutex_lock(&c->lock);
	while (!c->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		int64_t ns = until.tv_nsec + (FLUSH_NS << (fails < 6 ? fails : 6));
		until.tv_sec += (time_t)(ns / 1000000000LL);
		until.tv_nsec = (long)(ns % 1000000000LL);
		pthread_cond_timedwait(&c->flush_cv, &c->lock, &until);
		if (c->npending && !c->stopping) {
			pthread_mutex_unlock(&c->lock);
			fails = flush_pending(c) ? fails + 1 : 0;
			pthread_mutex_lock(&c->lock);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int capture_used(struct capture *c, struct cap_proc *p, uint64_t ino, bool trust, uint64_t *version)
{
	struct cap_proc *job = p->job ? p->job : p;
	pthread_mutex_lock(&c->lock);
	bool had = *version && used_has(&p->used, ino, *version);
	/* numbered now, in the order the uses are made: a version the job
	 * writes counts the uses numbered before its close */
	uint64_t seq = had ? 0 : ++job->useq;
	if (!had && trust && *version && c->npending < PENDING_LIMIT &&
	    !mfs_array_reserve(&c->pending, &c->cappending, c->npending, sizeof *c->pending)) {
		/* a version known: its use is recorded with the next version
		 * made here (which may derive from it), or by the flusher */
		c->pending[c->npending++] =
			(struct cap_pending){ p, ino, *version, seq, mfs_now_ns(), false, false, !p->used.forgot };
		p->refs++;
		used_add(&p->used, ino, *version);
		bool full = c->npending >= PENDING_MAX;
		pthread_mutex_unlock(&c->lock);
		if (full)
			flush_pending(c); /* says why when it cannot; they wait */
		return 0;
	}
	pthread_mutex_unlock(&c->lock);
	if (had)
		return 0;
	bool record[2] = { !p->recorded, job != p && !job->recorded };
	uint64_t got = trust ? *version : 0;
	int rc = ns_prov_used(c->vol, &p->p, &job->p, record, ino, seq, &got);
	if (rc == 0) {
		p->recorded = true;
		job->recorded = true;
		pthread_mutex_lock(&c->lock);
		used_add(&p->used, ino, got);
		pthread_mutex_unlock(&c->lock);
		*version = got;
	}
	return rc;
}

size_t capture_feeders(struct capture *c, struct cap_proc *const *writers, size_t n,
		       const struct cap_proc *opener, struct cap_proc **out, size_t max)
{
	size_t nf = 0, nr = n + (opener != NULL);
	pthread_mutex_lock(&c->lock);
	/* breadth first up the pipeline: writers, what feeds them, ... */
	for (size_t at = 0; at < nr + nf && nf < max; at++) {
		const struct cap_proc *w = at < n ? writers[at] : at < nr ? opener : out[at - nr];
		/* the pipe it reads, and the pipes upstream of it through
		 * processes that were never captured */
		uint64_t pipes[8];
		size_t np = 0;
		for (uint64_t pi = w->pipe_in; pi && np < MFS_ARRAY_LEN(pipes); pi = link_in(c, pi)) {
			bool loop = false;
			for (size_t k = 0; k < np; k++)
				loop |= pipes[k] == pi;
			if (loop)
				break;
			pipes[np++] = pi;
		}
		for (size_t pk = 0; pk < np && nf < max; pk++) {
			for (struct cap_proc *p = c->by_pipe[pipes[pk] % PIPE_SLOTS]; p && nf < max; p = p->next_pipe) {
				if (p->pipe_out != pipes[pk] || p == w || p == opener)
					continue;
				bool dup = false;
				for (size_t k = 0; k < n && !dup; k++)
					dup = writers[k] == p;
				for (size_t k = 0; k < nf && !dup; k++)
					dup = out[k] == p;
				if (!dup) {
					p->refs++;
					out[nf++] = p;
				}
			}
		}
	}
	pthread_mutex_unlock(&c->lock);
	return nf;
}

void capture_gen(struct capture *c, struct cap_proc *const *writers, size_t n, struct cap_proc *const *feeders,
		 size_t nf, const struct prov_proc **procs, bool *record, struct prov_job_uses *jobs,
		 struct prov_gen *g)
{
	for (size_t i = 0; i < n; i++) {
		procs[i] = &writers[i]->p;
		record[i] = !writers[i]->recorded;
	}
	size_t nj = 0;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < n + nf; i++) {
		const struct cap_proc *p = i < n ? writers[i] : feeders[i - n];
		const struct cap_proc *job = p->job ? p->job : p;
		if (job->useq)
			jobs[nj++] = (struct prov_job_uses){ job->p.id, job->useq };
	}
	pthread_mutex_unlock(&c->lock);
	*g = (struct prov_gen){ .procs = procs, .record = record, .n = n, .jobs = jobs, .njobs = nj };
}

void capture_gen_done(struct cap_proc *const *writers, size_t n, int rc)
{
	if (rc)
		return;
	for (size_t i = 0; i < n; i++)
		writers[i]->recorded = true;
}

/* ---------------------------------------------------------------- control */

bool capture_noise_name(const char *name, bool is_dir)
{
	static const char *const dirs[] = { ".git", ".hg", ".svn", ".bzr", "__pycache__", ".cache",
					    ".Trash", ".Trash-0" };
	static const char *const files[] = { "*.pyc", ".*.swp", ".*.swx", ".*.swo", ".#*" };
	if (is_dir) {
		for (size_t i = 0; i < MFS_ARRAY_LEN(dirs); i++)
			if (!strcmp(name, dirs[i]))
				return true;
		return !strncmp(name, ".Trash-", 7);
	}
	for (size_t i = 0; i < MFS_ARRAY_LEN(files); i++)
		if (fnmatch(files[i], name, 0) == 0)
			return true;
	return false;
}

void capture_invalidate(struct capture *c)
{
	c->gen++;
}

/* dir_lock held */
static struct dir_ent *dir_find(struct capture *c, uint64_t ino)
{
	for (struct dir_ent *d = c->dirs[ino % DIR_SLOTS]; d; d = d->next)
		if (d->ino == ino)
			return d;
	return NULL;
}

static void dir_remember(struct capture *c, uint64_t ino, bool on, uint64_t gen)
{
	pthread_mutex_lock(&c->dir_lock);
	if (c->ndirs > 64 * DIR_SLOTS) {
		for (size_t i = 0; i < DIR_SLOTS; i++) {
			while (c->dirs[i]) {
				struct dir_ent *n = c->dirs[i]->next;
				free(c->dirs[i]);
				c->dirs[i] = n;
			}
		}
		c->ndirs = 0;
	}
	struct dir_ent *d = dir_find(c, ino);
	if (!d && (d = calloc(1, sizeof *d))) {
		d->ino = ino;
		d->next = c->dirs[ino % DIR_SLOTS];
		c->dirs[ino % DIR_SLOTS] = d;
		c->ndirs++;
	}
	if (d) {
		d->on = on;
		d->gen = gen;
	}
	pthread_mutex_unlock(&c->dir_lock);
}

bool capture_dir_on(struct capture *c, uint64_t dir)
{
	uint64_t gen = c->gen;
	uint64_t seen[64];
	size_t nseen = 0;
	bool on = true;
	uint64_t cur = dir;
	for (int depth = 0; depth < 4096; depth++) {
		pthread_mutex_lock(&c->dir_lock);
		struct dir_ent *d = dir_find(c, cur);
		bool known = d && d->gen == gen;
		bool known_on = known && d->on;
		pthread_mutex_unlock(&c->dir_lock);
		if (known) {
			on = known_on;
			break;
		}
		if (nseen < MFS_ARRAY_LEN(seen))
			seen[nseen++] = cur;
		char val[8];
		int n = ns_getxattr(c->vol, cur, CAPTURE_XATTR, val, sizeof val - 1);
		if (n >= 0) {
			val[n] = '\0';
			if (!strcmp(val, "off")) {
				on = false;
				break;
			}
			if (!strcmp(val, "on"))
				break;
		}
		struct inode_rec in;
		if (cur == MFS_ROOT_INO || ns_getattr(c->vol, cur, &in) || in.parent == 0 || in.parent == cur)
			break;
		cur = in.parent;
	}
	for (size_t i = 0; i < nseen; i++)
		dir_remember(c, seen[i], on, gen);
	return on;
}
