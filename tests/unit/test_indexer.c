/* SPDX-License-Identifier: Apache-2.0 */
/* The indexer over a real volume, no FUSE: what is indexed, renames and
 * deletes of subtrees, hard links, bad input, restarts and rebuilds. */
#include "harness.h"
#include "indexer.h"
#include "common.h"

#include <sys/stat.h>
#include <unistd.h>

static struct mfs_ctx C = { 0, 0, 1 };

static uint64_t mkfile(struct mfs_volume *v, uint64_t parent, const char *name)
{
	struct inode_rec in;
	return ns_mknod(v, &C, parent, name, S_IFREG | 0644, 0, &in) ? 0 : in.ino;
}

static uint64_t mkdir_(struct mfs_volume *v, uint64_t parent, const char *name)
{
	struct inode_rec in;
	return ns_mkdir(v, &C, parent, name, 0755, &in) ? 0 : in.ino;
}

static void xset(struct mfs_volume *v, uint64_t ino, const char *name, const char *value)
{
	ns_setxattr(v, &C, ino, name, value, strlen(value), 0);
}

static void catch_up(struct indexer *ix)
{
	size_t n;
	do {
		if (indexer_step(ix, 0, &n))
			break;
	} while (n);
}

struct results {
	char paths[64][256];
	int n;
};

static int collect(void *arg, const struct idx_hit *h)
{
	struct results *r = arg;
	if (r->n < 64)
		snprintf(r->paths[r->n], 256, "%.*s", (int)h->path_len, h->path);
	r->n++;
	return 0;
}

static bool has_attr(void *arg, const char *name)
{
	struct idx_backend *be = arg;
	return be->ops->has_attr(be, name);
}

/* Runs a query on a fresh read-only connection, as `metafs find` does. */
static int run_query(const char *ipath, const char *text, enum idx_sort sort, idx_hit_cb cb, void *arg)
{
	struct idx_backend *be;
	char err[256];
	if (idx_sqlite_open(ipath, IDX_OPEN_READONLY, &be, err, sizeof err))
		return -1;
	struct q_node *q = NULL;
	int pos;
	int rc = q_parse(text, &q, err, sizeof err, &pos);
	if (!rc)
		rc = q_resolve(q, mfs_now_ns(), has_attr, be, err, sizeof err, &pos);
	struct idx_query_opts o = { .sort = sort };
	if (!rc)
		rc = be->ops->query(be, q, &o, cb, arg);
	q_free(q);
	be->ops->close(be);
	return rc;
}

static int query(const char *ipath, const char *text, struct results *r)
{
	memset(r, 0, sizeof *r);
	return run_query(ipath, text, IDX_SORT_PATH, collect, r);
}

/* Every hit of a query sorted by score, with limit (0: all), in order. */
struct ranked {
	uint64_t ino[4000];
	double score[4000];
	int n, limit;
};

static int collect_ranked(void *arg, const struct idx_hit *h)
{
	struct ranked *r = arg;
	if (r->n < 4000) {
		r->ino[r->n] = h->ino;
		r->score[r->n] = h->score;
	}
	r->n++;
	return r->limit && r->n >= r->limit ? 1 : 0;
}

static int query_ranked(const char *ipath, const char *text, int limit, struct ranked *r)
{
	memset(r, 0, sizeof *r);
	r->limit = limit;
	return run_query(ipath, text, IDX_SORT_SCORE, collect_ranked, r);
}

/* best score first, ties by inode, no inode twice */
static bool in_rank_order(const struct ranked *r)
{
	for (int i = 1; i < r->n && i < 4000; i++)
		if (r->score[i] > r->score[i - 1] || (r->score[i] == r->score[i - 1] && r->ino[i] <= r->ino[i - 1]))
			return false;
	return true;
}

static bool found(struct results *r, const char *path)
{
	for (int i = 0; i < r->n && i < 64; i++)
		if (!strcmp(r->paths[i], path))
			return true;
	return false;
}

/* A raw change of an xattr with its changelog record, in a transaction
 * left open: a cluster store hands out the record's id now (a read after
 * the writes sends them to the server), and makes it visible at commit. */
static struct store_txn *open_change(struct mfs_volume *v, uint64_t ino, const char *xname, uint64_t *seq_before)
{
	struct store *s = v->store;
	uint64_t first;
	s->ops->changelog_bounds(s, &first, seq_before);
	struct store_txn *t;
	if (s->ops->begin(s, &t))
		return NULL;
	struct inode_rec in;
	s->ops->inode_get(t, ino, &in, true);
	in.version++;
	s->ops->inode_put(t, &in);
	s->ops->xattr_put(t, ino, xname, "", 0);
	struct cl_rec r = { .op = CL_SETXATTR, .ino = ino, .version = in.version, .mode = in.mode,
			    .nlink = in.nlink, .xname = xname, .xname_len = (uint32_t)strlen(xname) };
	s->ops->changelog_append(t, &r);
	s->ops->inode_get(t, ino, &in, false);
	return t;
}

/* What `find --consistent` checks on a cluster whose cursor waits at a
 * missing id: the index has read up to the volume's newest id and applied
 * every record the volume now holds past its cursor. */
static bool applied_all(struct mfs_volume *v, const char *ipath)
{
	struct idx_backend *be;
	char err[256];
	if (idx_sqlite_open(ipath, IDX_OPEN_READONLY, &be, err, sizeof err))
		return false;
	struct idx_past p;
	int rc = be->ops->past(be, &p);
	be->ops->close(be);
	uint64_t first, last, n;
	v->store->ops->changelog_bounds(v->store, &first, &last);
	if (rc || p.seen < last || !v->store->ops->changelog_count ||
	    v->store->ops->changelog_count(v->store, p.cursor, p.seen, &n))
		return false;
	return n == p.done;
}

/* Ids that become visible out of order (the MySQL store's AUTO_INCREMENT
 * ids, committed in another order), and ids that never do (a rollback). */
static void test_late_ids(struct mfs_volume *v, const char *ipath)
{
	setenv("METAFS_CHANGELOG_SETTLE_MS", "1500", 1);
	struct indexer *ix;
	CHECK_RC(indexer_open(v, ipath, &ix, NULL, NULL), 0, "open the index again, with a short settle time");
	uint64_t a = mkfile(v, MFS_ROOT_INO, "late-a.txt"), b = mkfile(v, MFS_ROOT_INO, "late-b.txt");
	catch_up(ix);
	uint64_t before;
	struct store_txn *ta = open_change(v, a, "user.tag.late", &before);
	xset(v, b, "user.tag.early", "");
	catch_up(ix);
	struct results r;
	query(ipath, "tag:early", &r);
	CHECK(r.n == 1, "a change committed after an open one is applied (%d)", r.n);
	uint64_t first, last;
	if (!strcmp(v->store->ops->name, "mysql")) {
		CHECK(indexer_cursor(ix) <= before, "the cursor stays before the open transaction's id (%llu, %llu)",
		      (unsigned long long)indexer_cursor(ix), (unsigned long long)before);
		CHECK(applied_all(v, ipath), "every record committed is applied, though the cursor waits");
	} else {
		/* the embedded store numbers records at commit: no late ids */
		v->store->ops->changelog_bounds(v->store, &first, &last);
		CHECK(indexer_cursor(ix) == last, "the cursor passes the committed change (%llu of %llu)",
		      (unsigned long long)indexer_cursor(ix), (unsigned long long)last);
	}
	CHECK_RC(v->store->ops->commit(ta), 0, "the older transaction commits");
	if (!strcmp(v->store->ops->name, "mysql"))
		CHECK(!applied_all(v, ipath), "its record, visible and not yet applied, is counted");
	catch_up(ix);
	query(ipath, "tag:late", &r);
	CHECK(r.n == 1 && !strcmp(r.paths[0], "/late-a.txt"), "its record, visible late, is applied (%d)", r.n);
	v->store->ops->changelog_bounds(v->store, &first, &last);
	CHECK(indexer_cursor(ix) == last, "the cursor then passes both (%llu of %llu)",
	      (unsigned long long)indexer_cursor(ix), (unsigned long long)last);

	struct store_txn *tc = open_change(v, a, "user.tag.never", &before);
	v->store->ops->abort(tc);
	xset(v, b, "user.tag.after", "");
	catch_up(ix);
	query(ipath, "tag:after", &r);
	CHECK(r.n == 1, "a change after a rolled-back id is applied at once (%d)", r.n);
	if (!strcmp(v->store->ops->name, "mysql"))
		CHECK(applied_all(v, ipath), "a rolled-back id is not waited for by find --consistent");
	mfs_sleep_us(1700000);
	catch_up(ix);
	v->store->ops->changelog_bounds(v->store, &first, &last);
	CHECK(indexer_cursor(ix) == last, "a missing id is given up after the settle time (%llu of %llu)",
	      (unsigned long long)indexer_cursor(ix), (unsigned long long)last);
	query(ipath, "tag:never", &r);
	CHECK(r.n == 0, "and the rolled-back change is not in the index (%d)", r.n);
	indexer_close(ix);
	unsetenv("METAFS_CHANGELOG_SETTLE_MS");
}

int main(void)
{
	char dir[256], ipath[512];
	struct mfs_volume *v = t_volume(dir, sizeof dir, MFS_DEFAULT_INLINE_THRESHOLD, 0);
	indexer_default_path(dir, ipath, sizeof ipath);
	struct indexer *ix;
	CHECK_RC(indexer_open(v, ipath, &ix, NULL, NULL), 0, "a missing index is built");

	uint64_t photos = mkdir_(v, MFS_ROOT_INO, "photos");
	uint64_t y = mkdir_(v, photos, "2024");
	uint64_t beach = mkfile(v, y, "beach.jpg");
	uint64_t city = mkfile(v, y, "city.jpg");
	uint64_t docs = mkdir_(v, MFS_ROOT_INO, "docs");
	uint64_t rep = mkfile(v, docs, "quarterly-report.txt");
	xset(v, beach, "user.xdg.tags", "beach, summer");
	xset(v, city, "user.annotations", "{\"bicycles\":4,\"people\":[\"ann\",\"bo\"],\"meta\":{\"ok\":true}}");
	xset(v, rep, "user.project", "apollo moonshot");
	xset(v, rep, "user.tag.urgent", "");
	xset(v, beach, "user.broken", "{\"not json");
	unsigned char bin[] = { 0xff, 0x00, 0xfe, 0x01 };
	ns_setxattr(v, &C, beach, "user.bin", bin, sizeof bin, 0);
	struct inode_rec in;
	CHECK_RC(ns_link(v, &C, rep, photos, "report-link.txt", &in), 0, "hard link");
	char badname[] = { 'b', 'a', 'd', (char)0xff, '.', 't', 'x', 't', 0 };
	uint64_t bad = mkfile(v, docs, badname);
	catch_up(ix);
	CHECK(indexer_cursor(ix) > 0, "the cursor follows the changelog (%llu)", (unsigned long long)indexer_cursor(ix));

	struct results r;
	CHECK_RC(query(ipath, "tag:beach", &r), 0, "tag query");
	CHECK(r.n == 1 && found(&r, "/photos/2024/beach.jpg"), "user.xdg.tags entries are tags (%d)", r.n);
	query(ipath, "tag:summer", &r);
	CHECK(r.n == 1, "tags are trimmed");
	query(ipath, "tag:urgent", &r);
	CHECK(r.n == 2 && found(&r, "/docs/quarterly-report.txt") && found(&r, "/photos/report-link.txt"),
	      "user.tag.* names are tags, and a hard link is found under each name (%d)", r.n);
	query(ipath, "annotations.bicycles:>3", &r);
	CHECK(r.n == 1 && found(&r, "/photos/2024/city.jpg"), "JSON numbers support ranges");
	query(ipath, "annotations.bicycles:5..9", &r);
	CHECK(r.n == 0, "and ranges exclude");
	query(ipath, "annotations.bicycles:\"4\"", &r);
	CHECK(r.n == 1, "a quoted number finds the JSON number written that way (%d)", r.n);
	query(ipath, "annotations.bicycles:\"4.0\"", &r);
	CHECK(r.n == 0, "but not when written another way (%d)", r.n);
	query(ipath, "annotations.meta.ok:\"1\"", &r);
	CHECK(r.n == 0, "and a quoted 1 is not the boolean true (%d)", r.n);
	query(ipath, "annotations.meta.ok:1", &r);
	CHECK(r.n == 1, "which a bare 1 is (%d)", r.n);
	query(ipath, "annotations.people:bo", &r);
	CHECK(r.n == 1, "arrays of strings");
	query(ipath, "annotations.meta.ok:true", &r);
	CHECK(r.n == 1, "nested objects as dotted names, booleans");
	query(ipath, "moonshot", &r);
	CHECK(r.n == 2, "free words match xattr text");
	query(ipath, "quarterly", &r);
	CHECK(r.n == 2 && found(&r, "/docs/quarterly-report.txt"), "free words match names (%d)", r.n);
	query(ipath, "broken:\"{\\\"not json\"", &r);
	CHECK(r.n == 1, "invalid JSON is indexed as text (%d)", r.n);
	query(ipath, "type:d", &r);
	CHECK(r.n == 3, "type:d (%d)", r.n);
	query(ipath, "path:/photos -type:d", &r);
	CHECK(r.n == 3, "path: is a subtree (%d)", r.n);
	query(ipath, "name:*.txt", &r);
	CHECK(r.n == 3, "globs on names, including a name that is not UTF-8 (%d)", r.n);
	CHECK(query(ipath, "nosuchfield:1", &r) != 0, "an unknown field is an error");

	/* a directory rename rewrites the paths under it */
	struct ns_unlinked g;
	CHECK_RC(ns_rename(v, &C, MFS_ROOT_INO, "photos", docs, "pictures", 0, &g), 0, "rename a directory");
	catch_up(ix);
	query(ipath, "tag:beach", &r);
	CHECK(r.n == 1 && found(&r, "/docs/pictures/2024/beach.jpg"), "descendants carry the new path (%s)",
	      r.n ? r.paths[0] : "none");
	query(ipath, "path:/photos", &r);
	CHECK(r.n == 0, "nothing is left under the old path");
	query(ipath, "path:/docs/pictures/2024", &r);
	CHECK(r.n == 3, "the subtree is under the new path (%d)", r.n);

	/* a recursive delete leaves nothing */
	ns_unlink(v, &C, y, "beach.jpg", &g);
	ns_reclaim(v, beach);
	ns_unlink(v, &C, y, "city.jpg", &g);
	ns_rmdir(v, &C, photos, "2024", &g);
	catch_up(ix);
	query(ipath, "path:/docs/pictures/2024", &r);
	CHECK(r.n == 0, "a deleted subtree leaves nothing in the index");
	query(ipath, "tag:beach", &r);
	CHECK(r.n == 0, "nor its tags");
	ns_unlink(v, &C, photos, "report-link.txt", &g);
	catch_up(ix);
	query(ipath, "tag:urgent", &r);
	CHECK(r.n == 1, "removing one hard link keeps the other name");

	/* restart: the cursor is durable, nothing is lost or applied twice */
	uint64_t cur = indexer_cursor(ix);
	indexer_close(ix);
	uint64_t late = mkfile(v, docs, "late-arrival.txt");
	CHECK_RC(indexer_open(v, ipath, &ix, NULL, NULL), 0, "reopen");
	CHECK(indexer_cursor(ix) == cur, "the cursor survives a restart");
	catch_up(ix);
	query(ipath, "late", &r);
	CHECK(r.n == 1, "changes made while the indexer was down are applied");

	/* a deleted index is rebuilt from the metadata */
	indexer_close(ix);
	unlink(ipath);
	CHECK_RC(indexer_open(v, ipath, &ix, NULL, NULL), 0, "a deleted index is rebuilt");
	query(ipath, "late OR quarterly", &r);
	CHECK(r.n == 2, "with the same documents (%d)", r.n);
	/* a corrupt one too */
	indexer_close(ix);
	FILE *f = fopen(ipath, "r+");
	fseek(f, 100, SEEK_SET);
	fputs("garbage garbage garbage garbage", f);
	fclose(f);
	CHECK_RC(indexer_open(v, ipath, &ix, NULL, NULL), 0, "a corrupt index is set aside and rebuilt");
	query(ipath, "tag:urgent", &r);
	CHECK(r.n == 1, "and answers again");

	/* Ranked free words: the best documents are taken first, and a reader
	 * that goes past them, or a filter that drops them, gets the rest in
	 * order. 2,600 files hold "zebra" 1 to 4 times (many ties); the
	 * 10 with the tag "rare" rank lowest. */
	uint64_t zoo = mkdir_(v, MFS_ROOT_INO, "zoo");
	for (int i = 0; i < 2600; i++) {
		char name[32];
		snprintf(name, sizeof name, "animal-%04d", i);
		uint64_t an = mkfile(v, zoo, name);
		static const char *const text[] = { "zebra", "zebra zebra", "zebra zebra zebra", "zebra zebra zebra zebra" };
		xset(v, an, "user.comment", i < 10 ? "zebra and many other words besides" : text[i % 4]);
		if (i < 10)
			xset(v, an, "user.tag.rare", "");
	}
	catch_up(ix);
	static struct ranked rk, rk2;
	CHECK_RC(query_ranked(ipath, "zebra", 0, &rk), 0, "a ranked query over 2,600 matches");
	CHECK(rk.n == 2600 && in_rank_order(&rk), "every match, best first, ties by inode (%d)", rk.n);
	query_ranked(ipath, "zebra", 2500, &rk2);
	bool same = rk2.n == 2500;
	for (int i = 0; same && i < 2500; i++)
		same = rk2.ino[i] == rk.ino[i] && rk2.score[i] == rk.score[i];
	CHECK(same, "a limit past the first round gives the same first results (%d)", rk2.n);
	query_ranked(ipath, "zebra tag:rare", 0, &rk2);
	same = rk2.n == 10 && in_rank_order(&rk2);
	for (int i = 0; same && i < 10; i++)
		same = rk2.ino[i] == rk.ino[2590 + i];
	CHECK(same, "a filter that drops the best matches gives the rest, in order (%d)", rk2.n);
	query(ipath, "quarterly", &r);
	query_ranked(ipath, "zebra OR quarterly", 0, &rk2);
	CHECK(r.n == 1 && rk2.n == 2601 && in_rank_order(&rk2), "words under OR rank every match (%d)", rk2.n);
	(void)late;
	(void)bad;
	(void)city;
	indexer_close(ix);
	test_late_ids(v, ipath);
	mfs_close(v);
	t_rmrf(dir);
	return t_done();
}
