/* SPDX-License-Identifier: Apache-2.0 */
#include "tools.h"
#include "indexer.h"
#include "metadata.h"
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fsck_ui {
	bool json, tty;
	json_t *issues;
	int64_t last_ns;
	bool progress_shown;
};

static void clear_progress(struct fsck_ui *u)
{
	if (u->progress_shown) {
		fputs("\r\033[K", stderr);
		u->progress_shown = false;
	}
}

static void on_report(void *arg, const char *kind, uint64_t ino, const char *detail, bool repaired)
{
	struct fsck_ui *u = arg;
	if (u->json) {
		json_t *o = json_object();
		json_object_set_new(o, "kind", json_string(kind));
		json_object_set_new(o, "ino", json_integer((json_int_t)ino));
		json_object_set_new(o, "detail", json_string(detail));
		json_object_set_new(o, "repaired", json_boolean(repaired));
		json_array_append_new(u->issues, o);
		return;
	}
	clear_progress(u);
	printf("%s: inode %llu: %s%s\n", kind, (unsigned long long)ino, detail, repaired ? " [repaired]" : "");
}

static void on_progress(void *arg, const char *phase, uint64_t done, uint64_t total)
{
	struct fsck_ui *u = arg;
	if (!u->tty)
		return;
	int64_t now = mfs_now_ns();
	if (now - u->last_ns < 100000000 && (!total || done != total))
		return; /* ten updates a second at most */
	u->last_ns = now;
	if (total)
		fprintf(stderr, "\r\033[Kfsck: %s %llu/%llu", phase, (unsigned long long)done, (unsigned long long)total);
	else
		fprintf(stderr, "\r\033[Kfsck: %s %llu", phase, (unsigned long long)done);
	u->progress_shown = true;
}

struct index_diff {
	struct fsck_ui *u;
	struct fsck_result *r;
};

static void on_index_diff(void *arg, const char *what, uint64_t ino, const char *detail)
{
	struct index_diff *d = arg;
	d->r->problems++;
	on_report(d->u, "index", ino, detail, false);
}

/* Brings the index up to the changelog, then compares it with one built
 * afresh from the metadata. */
static int fsck_index(struct mfs_volume *v, const char *vol, const struct fsck_opts *o, struct fsck_result *r,
		      struct fsck_ui *u)
{
	char ipath[PATH_MAX], fresh[PATH_MAX + 16];
	indexer_default_path(vol, ipath, sizeof ipath);
	if (idx_is_es(ipath)) {
		fprintf(stderr, "metafs: fsck --index checks a SQLite index; %s names a search cluster "
				"(metafs reindex rebuilds that)\n", idx_locator_file(ipath));
		return -EOPNOTSUPP;
	}
	struct indexer *ix;
	int rc = indexer_open(v, ipath, &ix, NULL, NULL);
	if (rc)
		return rc;
	size_t n;
	do
		rc = indexer_step(ix, 0, &n);
	while (!rc && n);
	indexer_close(ix);
	if (rc)
		return rc;
	snprintf(fresh, sizeof fresh, "%s.fsck", ipath);
	if ((rc = indexer_rebuild(v, fresh, NULL, NULL)))
		return rc;
	struct index_diff d = { u, r };
	uint64_t before = r->problems;
	long diffs = idx_sqlite_compare(ipath, fresh, on_index_diff, &d);
	if (diffs < 0) {
		unlink(fresh);
		return (int)diffs;
	}
	if (diffs && o->repair && rename(fresh, ipath) == 0) {
		r->repaired += r->problems - before;
		on_report(u, "index", 0, "the search index was rebuilt from the metadata", true);
	} else {
		unlink(fresh);
	}
	return 0;
}

int cmd_fsck(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "repair", no_argument, NULL, 'r' },
		{ "scrub", no_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "index", no_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fsck_opts o = { 0 };
	bool check_index = false;
	struct fsck_ui u = { 0 };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': o.repair = true; break;
		case 's': o.scrub = true; break;
		case 'j': u.json = true; break;
		case 'i': check_index = true; break;
		case 'h':
			printf("usage: metafs fsck VOLUME [--repair] [--scrub] [--json]\n"
			       "  Checks an unmounted volume: the tree, link counts, entries, orphans,\n"
			       "  data records and the changelog's sequence.\n"
			       "  --repair  fix what is safe to fix (unreachable inodes go to /lost+found)\n"
			       "  --scrub   also verify the checksum of every stored byte\n"
			       "  --json    one JSON object with the counts and every problem\n"
			       "  --index   also compare the search index with the metadata (after\n"
			       "            applying the changelog to it); --repair rebuilds it\n"
			       "  exit status: 0 clean; 1 damage found (with --repair: all of it repaired);\n"
			       "  4 damage left after --repair; 2 usage or open errors\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1) {
		die_msg("usage: metafs fsck VOLUME [--repair] [--scrub] [--json]");
		return 2;
	}
	const char *vol = argv[optind];
	char err[1024] = "";
	struct mfs_volume *v;
	int rc = mfs_open(vol, 0, &v, err, sizeof err);
	if (rc == -EBUSY) {
		die_msg("%s is mounted or in use; unmount it first (fsck needs the volume to itself)", vol);
		return 2;
	}
	if (rc) {
		die_msg("%s", err);
		return 2;
	}
	u.tty = isatty(STDERR_FILENO);
	u.issues = json_array();
	o.report = on_report;
	o.progress = on_progress;
	o.arg = &u;
	struct fsck_result r;
	rc = mfs_fsck(v, &o, &r);
	if (!rc && check_index)
		rc = fsck_index(v, vol, &o, &r, &u);
	mfs_close(v);
	clear_progress(&u);
	if (rc) {
		json_decref(u.issues);
		die_msg("%s: fsck could not finish: %s", vol, strerror(-rc));
		return 2;
	}
	uint64_t left = r.problems - r.repaired;
	if (u.json) {
		json_t *j = json_object();
		json_object_set_new(j, "volume", json_string(vol));
		json_object_set_new(j, "inodes", json_integer((json_int_t)r.inodes));
		json_object_set_new(j, "directories", json_integer((json_int_t)r.directories));
		json_object_set_new(j, "files", json_integer((json_int_t)r.files));
		json_object_set_new(j, "entries", json_integer((json_int_t)r.entries));
		json_object_set_new(j, "data_records", json_integer((json_int_t)r.data_records));
		json_object_set_new(j, "xattrs", json_integer((json_int_t)r.xattrs));
		json_object_set_new(j, "changelog_records", json_integer((json_int_t)r.changelog_records));
		if (o.scrub)
			json_object_set_new(j, "scrubbed_bytes", json_integer((json_int_t)r.scrubbed_bytes));
		json_object_set_new(j, "problems", json_integer((json_int_t)r.problems));
		json_object_set_new(j, "repaired", json_integer((json_int_t)r.repaired));
		json_object_set_new(j, "issues", u.issues);
		char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		puts(s ? s : "{}");
		free(s);
		json_decref(j);
	} else {
		json_decref(u.issues);
		printf("%s: %llu inodes (%llu directories, %llu files), %llu entries, %llu data records, "
		       "%llu xattrs, %llu changelog records%s\n",
		       vol, (unsigned long long)r.inodes, (unsigned long long)r.directories,
		       (unsigned long long)r.files, (unsigned long long)r.entries, (unsigned long long)r.data_records,
		       (unsigned long long)r.xattrs, (unsigned long long)r.changelog_records,
		       o.scrub ? ", every checksum verified" : "");
		if (!r.problems)
			printf("clean\n");
		else
			printf("%llu problems found, %llu repaired%s\n", (unsigned long long)r.problems,
			       (unsigned long long)r.repaired,
			       left ? (o.repair ? "; the rest cannot be repaired" : "; run with --repair to fix")
				    : "");
	}
	if (!r.problems)
		return 0;
	return o.repair && left ? 4 : 1;
}
