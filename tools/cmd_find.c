/* SPDX-License-Identifier: Apache-2.0 */
/* metafs find: asks a volume's search index, shows only what the caller
 * could reach by walking the tree. */
#include "tools.h"
#include "search.h"
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: metafs find [PATH...] QUERY [options]\n"
	"  Searches the index of the volume that PATH is in (a directory inside a\n"
	"  mounted metafs, or a volume); without PATH, the current directory.\n"
	"\n"
	"query language:\n"
	"  word                 a word in a name, a path or an xattr's text\n"
	"  \"two words\"          a phrase\n"
	"  field:value          name:report, name:'*.jpg' (glob), path:/a/b (subtree),\n"
	"                       type:f|d|l|p|s|c|b, tag:beach, user:alice, group:staff,\n"
	"                       uid:N, gid:N, mode:644, nlink:2\n"
	"  field:>N  field:>=N  field:<N  field:<=N  field:N..M\n"
	"                       size:>10M, mtime:<7d (changed in the last 7 days),\n"
	"                       mtime:<2024-01-01, nlink:>1\n"
	"  xattr fields         any user.* xattr by its name without 'user.':\n"
	"                       project:apollo, project:\"\" (set, empty); JSON\n"
	"                       values by dotted names:\n"
	"                       annotations.bicycles:>3, review.approved:true\n"
	"  a b                  both (also: a AND b)\n"
	"  a OR b, -a, NOT a, ( ... )\n"
	"\n"
	"options:\n"
	"  -0               end each path with NUL instead of a newline\n"
	"  --json           one JSON object a line with the indexed fields\n"
	"  -l               long listing (mode, links, owner, group, size, mtime, path)\n"
	"  --sort KEY       score (default: BM25 of the free words, ties by inode),\n"
	"                   name, size, mtime, path\n"
	"  --reverse        reverse the order\n"
	"  --limit N        at most N results\n"
	"  --count          print only how many results\n"
	"  --consistent     first wait until the index holds every change committed\n"
	"                   before the query started (read-your-writes)\n"
	"  --timeout SEC    how long --consistent waits (default 10)\n"
	"\n"
	"Results are what the caller could reach by walking the tree. Users who\n"
	"cannot read the index file are answered by the mount's daemon, which\n"
	"checks their credentials.\n"
	"exit status: 0 success (also with no results), 1 error, 2 bad query or usage\n";

struct target {
	char vol[PATH_MAX];
	char mnt[PATH_MAX];
	char sub[PATH_MAX]; /* subtree inside the volume */
};

/* ---------------------------------------------------------------- arguments */

static bool looks_like_path(const char *a)
{
	struct stat st;
	return (a[0] == '/' || a[0] == '.' || strchr(a, '/')) && stat(a, &st) == 0;
}

static int target_of(const char *arg, struct target *t)
{
	if (resolve_target(arg, t->vol, sizeof t->vol, t->mnt, sizeof t->mnt))
		return -1;
	t->sub[0] = '\0';
	if (t->mnt[0]) {
		char real[PATH_MAX];
		if (!realpath(arg, real)) {
			die_msg("%s: %s", arg, strerror(errno));
			return -1;
		}
		size_t ml = strlen(t->mnt);
		const char *rest = !strcmp(t->mnt, "/") ? real : real + ml;
		snprintf(t->sub, sizeof t->sub, "%s", rest[0] ? rest : "/");
	}
	return 0;
}

/* --consistent for a search run here: what the volume has committed */
static int committed_local(void *arg, uint64_t *last, char *err, size_t errlen)
{
	const char *vol = arg;
	struct mfs_volume *v;
	if (mfs_open(vol, STORE_OPEN_READONLY, &v, err, errlen))
		return -1;
	uint64_t first;
	int rc = v->store->ops->changelog_bounds(v->store, &first, last);
	mfs_close(v);
	if (rc) {
		snprintf(err, errlen, "%s: cannot read the changelog: %s", vol, strerror(-rc));
		return -1;
	}
	return 0;
}

/* Searches the index directly when the caller can read it, and otherwise
 * asks the daemon of the mount, which applies the permission filter to the
 * caller's credentials. */
static int find_dispatch(const struct find_request *rq, const struct target *t)
{
	char ipath[PATH_MAX], err[2048] = "";
	indexer_default_path(t->vol, ipath, sizeof ipath);
	bool root = geteuid() == 0;
	if (!root && t->mnt[0] && access(idx_locator_file(ipath), R_OK) != 0 && errno == EACCES) {
		uid_t owner;
		if (mount_owner(t->mnt, &owner) != 0) {
			die_msg("cannot read the search index of %s (permission denied), and %s is not in the mount table",
				t->vol, t->mnt);
			return 1;
		}
		int rc = search_remote(t->vol, owner, rq, err, sizeof err);
		if (err[0])
			die_msg("%s", err);
		return rc < 0 ? 1 : rc;
	}
	long max = sysconf(_SC_NGROUPS_MAX);
	gid_t *groups = calloc(max > 0 ? (size_t)max : 65536, sizeof *groups);
	if (!groups)
		return 1;
	struct who w = { .root = root, .uid = geteuid(), .gid = getegid(), .groups = groups };
	w.ngroups = getgroups(max > 0 ? (int)max : 65536, groups);
	if (w.ngroups < 0)
		w.ngroups = 0;
	int rc = search_run(rq, &w, t->vol, NULL, committed_local, (void *)t->vol, stdout, err, sizeof err);
	free(groups);
	if (err[0])
		die_msg("%s", err);
	return rc;
}

int cmd_find(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "sort", required_argument, NULL, 's' },
		{ "reverse", no_argument, NULL, 'r' },
		{ "limit", required_argument, NULL, 'n' },
		{ "count", no_argument, NULL, 'c' },
		{ "consistent", no_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct find_request rq = { .sort = IDX_SORT_SCORE, .out = OUT_PATHS, .limit = -1, .timeout = 10 };
	/* Options may come anywhere, but a query word may start with '-'
	 * (-tag:x): only --long options and the exact short ones are
	 * options; everything else, and all after "--", is PATH or query. */
	char **opts = calloc((size_t)argc + 1, sizeof *opts), **words = calloc((size_t)argc + 1, sizeof *words);
	if (!opts || !words)
		return 1;
	int nopts = 0, nwords = 0;
	opts[nopts++] = argv[0];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			while (++i < argc)
				words[nwords++] = argv[i];
			break;
		}
		bool takes_value = !strcmp(a, "--sort") || !strcmp(a, "--limit") || !strcmp(a, "--timeout");
		if (!strncmp(a, "--", 2) || !strcmp(a, "-0") || !strcmp(a, "-l") || !strcmp(a, "-h") ||
		    !strcmp(a, "-0l") || !strcmp(a, "-l0")) {
			opts[nopts++] = argv[i];
			if (takes_value && i + 1 < argc)
				opts[nopts++] = argv[++i];
		} else {
			words[nwords++] = argv[i];
		}
	}
	int c;
	optind = 1;
	while ((c = getopt_long(nopts, opts, "0lh", longopts, NULL)) != -1) {
		switch (c) {
		case '0': rq.nul = true; break;
		case 'l': rq.out = OUT_LONG; break;
		case 'j': rq.out = OUT_JSON; break;
		case 'r': rq.reverse = true; break;
		case 'c': rq.count_only = true; break;
		case 'C': rq.consistent = true; break;
		case 's':
			if (!strcmp(optarg, "score")) rq.sort = IDX_SORT_SCORE;
			else if (!strcmp(optarg, "name")) rq.sort = IDX_SORT_NAME;
			else if (!strcmp(optarg, "size")) rq.sort = IDX_SORT_SIZE;
			else if (!strcmp(optarg, "mtime")) rq.sort = IDX_SORT_MTIME;
			else if (!strcmp(optarg, "path")) rq.sort = IDX_SORT_PATH;
			else {
				die_msg("--sort %s: use score, name, size, mtime or path", optarg);
				free(opts);
				free(words);
				return 2;
			}
			break;
		case 'n': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0) {
				die_msg("--limit %s: not a count", optarg);
				free(opts);
				free(words);
				return 2;
			}
			rq.limit = v;
			break;
		}
		case 'T': {
			char *end;
			rq.timeout = strtod(optarg, &end);
			if (*end || rq.timeout < 0) {
				die_msg("--timeout %s: not a number of seconds", optarg);
				free(opts);
				free(words);
				return 2;
			}
			break;
		}
		case 'h':
			fputs(usage_text, stdout);
			free(opts);
			free(words);
			return 0;
		default:
			free(opts);
			free(words);
			return 2;
		}
	}
	free(opts);
	argc = nwords;
	argv = words;
	optind = 0;
	/* leading arguments naming existing paths are PATHs; the rest is the query */
	int first_q = optind;
	while (first_q < argc - 1 && looks_like_path(argv[first_q]))
		first_q++;
	if (first_q >= argc) {
		die_msg("find: no query (try: metafs find --help)");
		free(words);
		return 2;
	}
	size_t qlen = 0;
	for (int i = first_q; i < argc; i++)
		qlen += strlen(argv[i]) + 1;
	char *query = malloc(qlen + 1);
	if (!query) {
		free(words);
		return 1;
	}
	query[0] = '\0';
	for (int i = first_q; i < argc; i++) {
		if (i > first_q)
			strcat(query, " ");
		strcat(query, argv[i]);
	}

	int npaths = first_q - optind;
	struct target *targets = calloc((size_t)(npaths ? npaths : 1), sizeof *targets);
	const char **under = calloc((size_t)npaths + 2, sizeof *under);
	int rc = 1;
	if (!targets || !under)
		goto out;
	if (npaths == 0) {
		if (target_of(".", &targets[0]))
			goto out;
		npaths = 1;
	} else {
		for (int i = 0; i < npaths; i++)
			if (target_of(argv[optind + i], &targets[i]))
				goto out;
	}
	for (int i = 1; i < npaths; i++)
		if (strcmp(targets[i].vol, targets[0].vol) || strcmp(targets[i].mnt, targets[0].mnt)) {
			die_msg("find: the paths are on different volumes or mounts");
			goto out;
		}
	int nunder = 0;
	for (int i = 0; i < npaths; i++)
		if (targets[i].sub[0] && strcmp(targets[i].sub, "/"))
			under[nunder++] = targets[i].sub;
	bool whole = false;
	for (int i = 0; i < npaths; i++)
		whole |= !targets[i].sub[0] || !strcmp(targets[i].sub, "/");

	rq.under = whole ? NULL : under;
	rq.query = query;
	rq.prefix = targets[0].mnt;
	rc = find_dispatch(&rq, &targets[0]);
out:
	free(targets);
	free(under);
	free(query);
	free(words);
	return rc;
}
