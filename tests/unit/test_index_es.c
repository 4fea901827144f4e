/* SPDX-License-Identifier: Apache-2.0 */
/* The Elasticsearch/OpenSearch backend's write rules, against the test
 * server (tests/e2e/helpers/mock_es.py, which keeps versions and tombstones
 * as a cluster does): a replay or a late older write changes nothing, a
 * deleted file is not brought back by an older write, subtree renames,
 * names that are not UTF-8, field names, and a rebuild behind the alias. */
#include "harness.h"
#include "indexer.h"
#include "common.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t server;

static void stop_server(void)
{
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
	}
}

static int start_server(const char *dir, int *port)
{
	char pf[256];
	snprintf(pf, sizeof pf, "%s/port", dir);
	server = fork();
	if (server == 0) {
		execlp("python3", "python3", MOCK_ES, "--port-file", pf, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		FILE *f = fopen(pf, "r");
		if (f) {
			int ok = fscanf(f, "%d", port);
			fclose(f);
			if (ok == 1)
				return 0;
		}
		mfs_sleep_us(50000);
	}
	return -1;
}

static struct idx_doc doc(uint64_t ino, uint64_t version, const char *path)
{
	struct idx_doc d = { 0 };
	d.in.ino = ino;
	d.in.version = version;
	d.in.mode = S_IFREG | 0644;
	d.in.nlink = 1;
	d.nnames = 1;
	d.names = calloc(1, sizeof *d.names);
	const char *slash = strrchr(path, '/');
	d.names[0].parent = 1;
	d.names[0].path = strdup(path);
	d.names[0].path_len = strlen(path);
	d.names[0].name = strdup(slash + 1);
	d.names[0].name_len = strlen(slash + 1);
	return d;
}

static void put(struct idx_backend *be, uint64_t ino, uint64_t version, const char *path, const char *xname,
		const char *xvalue)
{
	struct idx_doc d = doc(ino, version, path);
	struct idx_xattr x = { (char *)xname, (void *)xvalue, xvalue ? strlen(xvalue) : 0 };
	if (xname) {
		d.xattrs = &x;
		d.nxattrs = 1;
	}
	be->ops->put(be, &d);
	d.xattrs = NULL;
	d.nxattrs = 0;
	idx_doc_clear(&d);
}

struct results {
	char paths[16][256];
	size_t len[16];
	int n;
};

static int collect(void *arg, const struct idx_hit *h)
{
	struct results *r = arg;
	if (r->n < 16) {
		memcpy(r->paths[r->n], h->path, h->path_len < 255 ? h->path_len : 255);
		r->len[r->n] = h->path_len;
	}
	r->n++;
	return 0;
}

static bool has_attr(void *arg, const char *name)
{
	struct idx_backend *be = arg;
	return be->ops->has_attr(be, name);
}

static int query(struct idx_backend *be, const char *text, struct results *r)
{
	memset(r, 0, sizeof *r);
	be->ops->sync(be);
	struct q_node *q = NULL;
	char err[256];
	int pos;
	int rc = q_parse(text, &q, err, sizeof err, &pos);
	if (!rc)
		rc = q_resolve(q, mfs_now_ns(), has_attr, be, err, sizeof err, &pos);
	struct idx_query_opts o = { .sort = IDX_SORT_PATH };
	if (!rc)
		rc = be->ops->query(be, q, &o, collect, r);
	q_free(q);
	return rc;
}

static int first_path(void *arg, uint64_t parent, const char *path, size_t len)
{
	snprintf(arg, 256, "%.*s", (int)len, path);
	return 1;
}

int main(void)
{
	char dir[] = "/tmp/metafs-es-unit-XXXXXX", conf[300], err[512] = "";
	if (!mkdtemp(dir))
		return 1;
	int port = 0;
	atexit(stop_server);
	if (start_server(dir, &port)) {
		printf("1..0 # SKIP the test server did not start (python3 missing?)\n");
		return 0;
	}
	snprintf(conf, sizeof conf, "%s/search.conf", dir);
	FILE *f = fopen(conf, "w");
	fprintf(f, "backend = elasticsearch\nurl = http://127.0.0.1:%d\nindex = unit\n", port);
	fclose(f);

	struct idx_backend *be;
	CHECK_RC(idx_es_open(conf, IDX_OPEN_READONLY, &be, err, sizeof err), -ENOENT, "no index yet: -ENOENT");
	CHECK_RC(idx_es_open(conf, IDX_OPEN_CREATE | IDX_OPEN_BULK, &be, err, sizeof err), 0, "a new index");
	be->ops->begin(be);
	be->ops->set_volume(be, "vol-1");
	put(be, 10, 5, "/docs/report.txt", "user.annotations", "{\"pages\": 12, \"draft\": true}");
	put(be, 11, 2, "/docs/old.txt", NULL, NULL);
	CHECK_RC(be->ops->commit(be, 7), 0, "commit");
	CHECK_RC(be->ops->install(be), 0, "the alias points at it");
	be->ops->close(be);

	CHECK_RC(idx_es_open(conf, 0, &be, err, sizeof err), 0, "open through the alias");
	uint64_t cur = 0;
	char vol[64] = "";
	be->ops->cursor(be, &cur);
	be->ops->get_volume(be, vol, sizeof vol);
	CHECK(cur == 7 && !strcmp(vol, "vol-1"), "the cursor and volume are kept (%llu, %s)", (unsigned long long)cur,
	      vol);
	struct results r;
	query(be, "annotations.pages:>10 annotations.draft:true", &r);
	CHECK(r.n == 1 && !strcmp(r.paths[0], "/docs/report.txt"), "JSON fields (%d)", r.n);
	CHECK(has_attr(be, "annotations") && !has_attr(be, "annot") && !has_attr(be, "nosuch"),
	      "a field is known by its name and the names above it, no other");

	/* a late write of an older state changes nothing */
	be->ops->begin(be);
	put(be, 10, 3, "/docs/stale-name.txt", NULL, NULL);
	CHECK_RC(be->ops->commit(be, 8), 0, "an older version is refused quietly");
	query(be, "name:stale", &r);
	CHECK(r.n == 0, "the older version did not replace the newer (%d)", r.n);
	query(be, "name:report", &r);
	CHECK(r.n == 1, "the newer one is still there (%d)", r.n);

	/* the same version again: a replay, harmless */
	be->ops->begin(be);
	put(be, 10, 5, "/docs/report.txt", "user.annotations", "{\"pages\": 12, \"draft\": true}");
	CHECK_RC(be->ops->commit(be, 9), 0, "a replay");
	uint64_t n = 0;
	be->ops->count(be, &n);
	CHECK(n == 2, "no document twice (%llu)", (unsigned long long)n);

	/* a deleted file is not brought back by an older write */
	be->ops->begin(be);
	be->ops->del(be, 11, 4);
	CHECK_RC(be->ops->commit(be, 10), 0, "a delete");
	be->ops->begin(be);
	put(be, 11, 3, "/docs/old.txt", NULL, NULL);
	CHECK_RC(be->ops->commit(be, 11), 0, "a late older write");
	query(be, "name:old", &r);
	struct idx_hit h;
	CHECK(r.n == 0 && be->ops->get(be, 11, &h) == -ENOENT, "the deleted file stays deleted (%d)", r.n);
	be->ops->count(be, &n);
	CHECK(n == 1, "tombstones are not counted (%llu)", (unsigned long long)n);

	/* a name that is not UTF-8 comes back byte for byte */
	be->ops->begin(be);
	put(be, 12, 1, "/docs/bad\xff\xfe.txt", NULL, NULL);
	be->ops->commit(be, 12);
	query(be, "name:bad*", &r);
	CHECK(r.n == 1 && r.len[0] == 15 && !memcmp(r.paths[0], "/docs/bad\xff\xfe.txt", 15),
	      "a name that is not UTF-8 (%d)", r.n);

	/* a subtree rename rewrites the paths below */
	be->ops->begin(be);
	CHECK_RC(be->ops->move_subtree(be, "/docs/", 6, "/papers/", 8), 0, "a subtree rename");
	be->ops->commit(be, 13);
	char p[256] = "";
	be->ops->paths_of(be, 10, first_path, p);
	CHECK(!strcmp(p, "/papers/report.txt"), "the path is rewritten (%s)", p);
	query(be, "path:/docs", &r);
	CHECK(r.n == 0, "nothing is left under the old path (%d)", r.n);
	query(be, "path:/papers", &r);
	CHECK(r.n == 2, "both files are under the new one (%d)", r.n);
	be->ops->close(be);

	/* a rebuild fills a new index; the alias moves to it at install */
	CHECK_RC(idx_es_open(conf, IDX_OPEN_CREATE | IDX_OPEN_BULK, &be, err, sizeof err), 0, "a second index");
	be->ops->begin(be);
	be->ops->set_volume(be, "vol-1");
	put(be, 20, 1, "/fresh.txt", NULL, NULL);
	be->ops->commit(be, 20);
	struct idx_backend *reader;
	idx_es_open(conf, 0, &reader, err, sizeof err);
	query(reader, "name:fresh", &r);
	CHECK(r.n == 0, "readers see the old index until install (%d)", r.n);
	CHECK_RC(be->ops->install(be), 0, "install");
	query(reader, "name:fresh", &r);
	CHECK(r.n == 1, "then the new one (%d)", r.n);
	reader->ops->close(reader);
	be->ops->close(be);

	/* a cluster that cannot be reached: an error, not a new index */
	f = fopen(conf, "w");
	fprintf(f, "backend = elasticsearch\nurl = http://127.0.0.1:9\nindex = unit\ntimeout = 2\n");
	fclose(f);
	int rc = idx_es_open(conf, 0, &be, err, sizeof err);
	CHECK(rc == -EIO && strstr(err, "127.0.0.1:9"), "an unreachable cluster is -EIO with the node named (%d, %s)",
	      rc, err);
	f = fopen(conf, "w");
	fprintf(f, "backend = elasticsearch\nurl = http://127.0.0.1:%d\nindex = Bad Name\n", port);
	fclose(f);
	rc = idx_es_open(conf, 0, &be, err, sizeof err);
	CHECK(rc == -EINVAL && strstr(err, "index"), "a bad index name is refused (%s)", err);
	unlink(conf);
	char pfile[300];
	snprintf(pfile, sizeof pfile, "%s/port", dir);
	unlink(pfile);
	rmdir(dir);
	return t_done();
}
