/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Waiting lock requests of a shared volume (lockwait.h).
 *
 * A queued request is answered by this file's thread alone, after it took
 * the request off the queue. libfuse calls the interrupt function with the
 * request still alive, from the thread that read the FUSE_INTERRUPT, so it
 * looks the request up by its address under the queue's mutex: found, it is
 * still waiting and is marked; not found, it was answered already.
 */
#include "lockwait.h"
#include "common.h"
#include "locks.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#define FIRST_PAUSE_US 1000u
#define LAST_PAUSE_US 100000u /* a holder on another host is asked 10 times a second */

struct waiter {
	fuse_req_t req;
	uint64_t ino, owner, start, end;
	uint32_t kind, pid, type;
	bool ready; /* its interrupt function is set: it may be answered */
	bool interrupted; /* the caller got a signal */
	bool kicked; /* a lock of its inode was let go here: ask now */
	int64_t due_ns; /* next time the store is asked */
	unsigned pause_us;
	struct waiter *next;
};

struct lockwait {
	struct mfs_volume *vol;
	lockwait_granted_fn granted;
	void *arg;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct waiter *head, **tail;
	bool stop;
	pthread_t thread;
};

static void unlink_locked(struct lockwait *lw, struct waiter *w)
{
	struct waiter **p = &lw->head, *prev = NULL;
	while (*p && *p != w) {
		prev = *p;
		p = &(*p)->next;
	}
	if (!*p)
		return;
	*p = w->next;
	if (lw->tail == &w->next)
		lw->tail = prev ? &prev->next : &lw->head;
}

static void on_interrupt(fuse_req_t req, void *data)
{
	struct lockwait *lw = data;
	pthread_mutex_lock(&lw->mu);
	for (struct waiter *w = lw->head; w; w = w->next)
		if (w->req == req) {
			w->interrupted = true;
			pthread_cond_signal(&lw->cv);
			break;
		}
	pthread_mutex_unlock(&lw->mu);
}

/* The first waiter that must be looked at now, or NULL and *wake_ns, the
 * earliest time one will (0: none waits). */
static struct waiter *due_locked(struct lockwait *lw, int64_t now, int64_t *wake_ns)
{
	*wake_ns = 0;
	for (struct waiter *w = lw->head; w; w = w->next) {
		if (!w->ready)
			continue;
		if (w->interrupted || w->kicked || w->due_ns <= now)
			return w;
		if (!*wake_ns || w->due_ns < *wake_ns)
			*wake_ns = w->due_ns;
	}
	return NULL;
}

static void *run(void *arg)
{
	struct lockwait *lw = arg;
	pthread_mutex_lock(&lw->mu);
	while (!lw->stop) {
		int64_t wake;
		struct waiter *w = due_locked(lw, cl_mono_ns(), &wake);
		if (!w) {
			if (!wake) {
				pthread_cond_wait(&lw->cv, &lw->mu);
			} else {
				struct timespec ts = { .tv_sec = wake / 1000000000LL, .tv_nsec = wake % 1000000000LL };
				pthread_cond_timedwait(&lw->cv, &lw->mu, &ts);
			}
			continue;
		}
		int rc = -EINTR;
		if (!w->interrupted) {
			w->kicked = false;
			pthread_mutex_unlock(&lw->mu);
			/* only this thread frees a waiter: w stays valid */
			rc = ns_lock_set(lw->vol, w->ino, w->kind, w->owner, w->pid, w->type, w->start, w->end);
			pthread_mutex_lock(&lw->mu);
			if (rc == -EAGAIN && w->interrupted)
				rc = -EINTR;
		}
		if (rc == -EAGAIN) {
			w->due_ns = cl_mono_ns() + (int64_t)w->pause_us * 1000;
			if (w->pause_us < LAST_PAUSE_US)
				w->pause_us = w->pause_us * 2 > LAST_PAUSE_US ? LAST_PAUSE_US : w->pause_us * 2;
			continue;
		}
		unlink_locked(lw, w);
		pthread_mutex_unlock(&lw->mu);
		if (!rc && lw->granted)
			lw->granted(lw->arg, w->ino, w->kind);
		fuse_reply_err(w->req, -rc);
		free(w);
		pthread_mutex_lock(&lw->mu);
	}
	pthread_mutex_unlock(&lw->mu);
	return NULL;
}

int lockwait_start(struct mfs_volume *vol, lockwait_granted_fn granted, void *arg, struct lockwait **out)
{
	struct lockwait *lw = calloc(1, sizeof *lw);
	if (!lw)
		return -ENOMEM;
	lw->vol = vol;
	lw->granted = granted;
	lw->arg = arg;
	lw->tail = &lw->head;
	mfs_cond_init_monotonic(&lw->cv);
	pthread_mutex_init(&lw->mu, NULL);
	int rc = pthread_create(&lw->thread, NULL, run, lw);
	if (rc) {
		pthread_cond_destroy(&lw->cv);
		pthread_mutex_destroy(&lw->mu);
		free(lw);
		return -rc;
	}
	*out = lw;
	return 0;
}

void lockwait_stop(struct lockwait *lw)
{
	if (!lw)
		return;
	pthread_mutex_lock(&lw->mu);
	lw->stop = true;
	pthread_cond_signal(&lw->cv);
	pthread_mutex_unlock(&lw->mu);
	pthread_join(lw->thread, NULL);
	/* the session has ended: nobody else touches the queue now */
	struct waiter *w = lw->head;
	while (w) {
		struct waiter *next = w->next;
		fuse_reply_err(w->req, EINTR);
		free(w);
		w = next;
	}
	pthread_cond_destroy(&lw->cv);
	pthread_mutex_destroy(&lw->mu);
	free(lw);
}

int lockwait_add(struct lockwait *lw, fuse_req_t req, uint64_t ino, uint32_t kind, uint64_t owner, uint32_t pid,
		 uint32_t type, uint64_t start, uint64_t end)
{
	struct waiter *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	*w = (struct waiter){ .req = req, .ino = ino, .owner = owner, .start = start, .end = end, .kind = kind,
			      .pid = pid, .type = type, .pause_us = FIRST_PAUSE_US,
			      .due_ns = cl_mono_ns() + FIRST_PAUSE_US * 1000LL };
	pthread_mutex_lock(&lw->mu);
	*lw->tail = w;
	lw->tail = &w->next;
	pthread_mutex_unlock(&lw->mu);
	/* not under the mutex: libfuse calls on_interrupt from here at once
	 * when the caller was interrupted already */
	fuse_req_interrupt_func(req, on_interrupt, lw);
	pthread_mutex_lock(&lw->mu);
	w->ready = true;
	pthread_cond_signal(&lw->cv);
	pthread_mutex_unlock(&lw->mu);
	return 0;
}

void lockwait_kick(struct lockwait *lw, uint64_t ino)
{
	bool any = false;
	pthread_mutex_lock(&lw->mu);
	for (struct waiter *w = lw->head; w; w = w->next)
		if (w->ino == ino) {
			w->kicked = true;
			w->pause_us = FIRST_PAUSE_US;
			any = true;
		}
	if (any)
		pthread_cond_signal(&lw->cv);
	pthread_mutex_unlock(&lw->mu);
}
