/* SPDX-License-Identifier: Apache-2.0 */
/* Running a `metafs find` search, in the command itself or in the mount
 * daemon's search service on behalf of a caller who cannot read the index. */
#ifndef METAFS_SEARCH_H
#define METAFS_SEARCH_H

#include "indexer.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

enum out_kind { OUT_PATHS, OUT_JSON, OUT_LONG };

struct find_request {
	const char *query;
	enum idx_sort sort;
	bool reverse;
	const char *const *under; /* subtrees inside the volume, NULL-terminated; NULL: everything */
	enum out_kind out;
	bool nul, count_only, consistent;
	long limit; /* -1: no limit */
	double timeout; /* seconds --consistent waits */
	const char *prefix; /* printed before each path: the mountpoint, or "" */
	const int *cancel; /* when set and nonzero, the search stops (the daemon is stopping) */
};

/* Whose search it is: results must be reachable for this caller. */
struct who {
	bool root; /* sees everything */
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
};

/* The newest changelog id the volume has committed, for --consistent. */
typedef int (*committed_fn)(void *arg, uint64_t *last, char *err, size_t errlen);

/* Parses, runs and prints one search on out. Returns the exit status of
 * `metafs find`: 0, 1 (err says why), 2 (a bad query; err says where).
 * v: the volume open, or NULL (opened read-only if the search needs its
 * records: derived-from: on a backend that holds no lineage graph). */
int search_run(const struct find_request *rq, const struct who *w, const char *vol, struct mfs_volume *v,
	       committed_fn committed, void *carg, FILE *out, char *err, size_t errlen);

/* The request on the wire: encode returns a malloc'd buffer; decode parses
 * buf in place (it moves bytes and adds NULs), so the strings
 * of rq point into buf; the caller frees rq->under. -1: malformed. */
char *search_request_encode(const struct find_request *rq, size_t *len);
int search_request_decode(char *buf, size_t len, struct find_request *rq);

/* The search service of a mounted volume: a Unix socket (abstract, named
 * after the volume) where the daemon runs searches for other users, with the
 * permission filter applied to the caller's own credentials. */
struct search_service;
int search_service_start(struct mfs_volume *v, const char *vol, struct search_service **out);
void search_service_stop(struct search_service *s);

/* Asks the service of the mount serving vol, whose daemon runs as
 * daemon_uid, and copies its answer to stdout. Returns the exit status, or
 * -1 with err filled when no service answered. */
int search_remote(const char *vol, uid_t daemon_uid, const struct find_request *rq, char *err, size_t errlen);

#endif
