/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Provenance capture: who is calling, read from /proc, and whether lineage
 * is recorded for a directory's files. Private to fs/.
 */
#ifndef METAFS_FS_CAPTURE_H
#define METAFS_FS_CAPTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "metadata.h"

/* the xattr that switches capture off ("off") or back on ("on") for a
 * directory and everything below it; the nearest one up the tree decides */
#define CAPTURE_XATTR "user.metafs.lineage"

struct capture;

/* A process (one program image: an exec makes a new one), shared by the
 * handles and threads that refer to it. */
struct cap_proc {
	struct prov_proc p;
	struct cap_proc *job; /* referenced; NULL when it leads its own job */
	_Atomic bool recorded; /* its record is in the store */
	/* a shell or job runner: it starts programs for others, and execs
	 * them in a descriptor's place (`cmd > f` opens f, then execs cmd) */
	bool runner;
	/* the pipes on its standard input and output when it was first seen
	 * (their inode numbers, 0 if not pipes): data read from a pipe came
	 * from whatever the writing end had read */
	uint64_t pipe_in, pipe_out;
	/* private to capture.c */
	uint32_t refs;
	uint64_t start_ticks;
	struct used_set {
		uint64_t *v; /* (ino, version) pairs, open addressing */
		size_t n, cap;
		bool forgot; /* it was full once and started again */
	} used;
	/* as a job: the number of the last use its processes recorded (the
	 * store keeps the uses in that order) */
	uint64_t useq;
	struct cap_proc *next; /* in its pid's chain */
	struct cap_proc *next_pipe; /* in its standard output pipe's chain */
};

int capture_create(struct mfs_volume *v, struct capture **out);
void capture_destroy(struct capture *c);

/* The process behind a request's thread id, referenced; NULL when there
 * is none to charge (pid 0, a kernel thread, a process already gone, the
 * daemon itself). */
struct cap_proc *capture_proc(struct capture *c, uint32_t tid);
struct cap_proc *capture_ref(struct capture *c, struct cap_proc *p);
void capture_put(struct capture *c, struct cap_proc *p);

/* Whether files in directory dir are captured (CAPTURE_XATTR up the tree). */
bool capture_dir_on(struct capture *c, uint64_t dir);
/* Forget what capture_dir_on learnt (the xattr changed, a directory moved). */
void capture_invalidate(struct capture *c);

/* Records that p used the current version of ino. *version: the number of
 * that version when the caller knows it (0 if not), and the one recorded on
 * return; a version p has used already costs no transaction. trust: the
 * number given may be recorded without a look in the store (only this
 * mount changes the volume); such a use waits to be recorded with the next
 * version made here, or by itself within a tenth of a second. */
int capture_used(struct capture *c, struct cap_proc *p, uint64_t ino, bool trust, uint64_t *version);

/* The uses waiting to be recorded, taken for the caller's transaction
 * (uses, n of them: for prov_gen); capture_uses_done says how it went
 * (not committed: they wait again). */
struct cap_uses {
	struct prov_use_rec *uses;
	size_t n;
	struct cap_pending *taken; /* private to capture.c */
};
void capture_take_uses(struct capture *c, struct cap_uses *u);
void capture_uses_done(struct capture *c, struct cap_uses *u, int rc);

/* Whether a name is noise that is never recorded: version-control and
 * cache directories (.git, __pycache__ ...) and editor swap files. */
bool capture_noise_name(const char *name, bool is_dir);

/* The processes upstream of the writers (and of the handle's opener,
 * the first n entries being the writers) through pipes, referenced, for
 * their uses to count too: `cat a b | sort > c` makes c from a and b.
 * The opener matters when the writer closed its standard input before
 * writing, as tr does: the shell opened the output with the same pipes. */
#define CAPTURE_FEEDERS 16
size_t capture_feeders(struct capture *c, struct cap_proc *const *writers, size_t n,
		       const struct cap_proc *opener, struct cap_proc **out, size_t max);

/* Fills g for writers (procs and their record flags point into the
 * caller's arrays of n) with their jobs' and the feeders' jobs' uses so
 * far (jobs: room for n + nf); capture_gen_done marks them recorded once
 * the caller's transaction committed. */
void capture_gen(struct capture *c, struct cap_proc *const *writers, size_t n, struct cap_proc *const *feeders,
		 size_t nf, const struct prov_proc **procs, bool *record, struct prov_job_uses *jobs,
		 struct prov_gen *g);
void capture_gen_done(struct cap_proc *const *writers, size_t n, int rc);

#endif
