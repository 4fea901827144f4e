/* SPDX-License-Identifier: Apache-2.0 */
/* metafs lineage: which inputs a file was made from (--up), or what was
 * made from it (--down), from the provenance records of its volume. */
#include "tools.h"
#include "common.h"
#include "metadata.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: metafs lineage FILE [--up | --down] [--depth N] [--version N]\n"
	"                      [--json | --prov-json | --dot | --svg]\n"
	"       metafs lineage VOLUME|PATH --ino N [...]\n"
	"  Shows the lineage the filesystem recorded for FILE, a file in a mounted\n"
	"  metafs: the processes that wrote each version of it, and the file\n"
	"  versions they had read before.\n"
	"  --up         what FILE's newest version (or --version N) was made from,\n"
	"               and so on up (the default)\n"
	"  --down       everything made from any version of FILE (or --version N)\n"
	"  --depth N    stop N steps away (default 20)\n"
	"  --version N  start from version N of the file\n"
	"  --ino N      start from inode N (a deleted file's lineage stays)\n"
	"  --json       the graph as one JSON object (stable form for scripts)\n"
	"  --prov-json  the graph as W3C PROV-JSON\n"
	"  --dot        the graph in Graphviz DOT\n"
	"  --svg        the graph drawn as SVG (needs Graphviz's dot)\n"
	"exit status: 0 success, 1 error, 2 usage\n";

enum format { F_TREE, F_JSON, F_PROV, F_DOT, F_SVG };

struct ent {
	uint64_t ino, version;
	struct prov_version pv;
	bool have_pv;
	char *path;
	bool deleted;
};

struct act {
	struct prov_proc p;
	bool have;
};

struct edge {
	size_t to, from; /* ents: `to` was derived from `from` */
	uint64_t user; /* the process that used `from` */
};

struct graph {
	struct store_txn *t;
	struct ent *ents;
	size_t nents, capents;
	struct act *acts;
	size_t nacts, capacts;
	struct edge *edges;
	size_t nedges, capedges;
	bool down;
	int depth;
};

/* ---------------------------------------------------------------- paths */

struct name1 {
	uint64_t parent;
	char name[MFS_NAME_MAX + 1];
	bool found;
};

static int name1_cb(void *arg, uint64_t parent, const char *name, size_t len)
{
	struct name1 *n = arg;
	n->parent = parent;
	if (len > MFS_NAME_MAX)
		len = MFS_NAME_MAX;
	memcpy(n->name, name, len);
	n->name[len] = '\0';
	n->found = true;
	return 1;
}

/* The path of a live inode, "" when it has no name left. */
static char *path_of(struct store_txn *t, uint64_t ino)
{
	char *path = strdup("");
	for (int depth = 0; path && ino != MFS_ROOT_INO && depth < 4096; depth++) {
		struct name1 n = { 0 };
		if (t->store->ops->names_of(t, ino, name1_cb, &n) < 0 || !n.found) {
			free(path);
			return NULL;
		}
		char *np = malloc(strlen(n.name) + strlen(path) + 2);
		if (np)
			sprintf(np, "/%s%s", n.name, path);
		free(path);
		path = np;
		ino = n.parent;
	}
	if (path && !*path) {
		free(path);
		path = strdup("/");
	}
	return path;
}

/* ---------------------------------------------------------------- the graph */

static size_t ent_of(struct graph *g, uint64_t ino, uint64_t version, bool *added)
{
	*added = false;
	for (size_t i = 0; i < g->nents; i++)
		if (g->ents[i].ino == ino && g->ents[i].version == version)
			return i;
	if (mfs_array_reserve(&g->ents, &g->capents, g->nents, sizeof *g->ents))
		return SIZE_MAX;
	struct ent *e = &g->ents[g->nents];
	memset(e, 0, sizeof *e);
	e->ino = ino;
	e->version = version;
	e->have_pv = prov_version_get(g->t, ino, version, &e->pv) == 0;
	e->path = path_of(g->t, ino);
	if (!e->path) {
		/* gone: where it was when the version was made */
		e->deleted = true;
		char *dir = e->have_pv && e->pv.parent ? path_of(g->t, e->pv.parent) : NULL;
		const char *name = e->have_pv ? e->pv.name : "";
		e->path = malloc((dir ? strlen(dir) : 0) + strlen(name) + 2);
		if (e->path)
			sprintf(e->path, "%s/%s", dir && strcmp(dir, "/") ? dir : "", name);
		free(dir);
	}
	*added = true;
	return g->nents++;
}

static void act_of(struct graph *g, uint64_t id)
{
	if (!id)
		return;
	for (size_t i = 0; i < g->nacts; i++)
		if (g->acts[i].p.id == id)
			return;
	if (mfs_array_reserve(&g->acts, &g->capacts, g->nacts, sizeof *g->acts))
		return;
	struct act *a = &g->acts[g->nacts++];
	a->have = prov_proc_get(g->t, id, &a->p) == 0;
	a->p.id = id;
}

static const struct act *act_get(const struct graph *g, uint64_t id)
{
	for (size_t i = 0; i < g->nacts; i++)
		if (g->acts[i].p.id == id)
			return &g->acts[i];
	return NULL;
}

struct step {
	struct graph *g;
	size_t at;
	struct u64_vec *next; /* ent indexes to visit next */
	int rc;
};

static int step_cb(void *arg, uint64_t ino, uint64_t version, uint64_t user)
{
	struct step *s = arg;
	struct graph *g = s->g;
	bool added;
	size_t other = ent_of(g, ino, version, &added);
	if (other == SIZE_MAX)
		return -ENOMEM;
	if (mfs_array_reserve(&g->edges, &g->capedges, g->nedges, sizeof *g->edges))
		return -ENOMEM;
	g->edges[g->nedges++] = g->down ? (struct edge){ other, s->at, user } : (struct edge){ s->at, other, user };
	act_of(g, user);
	if (added && u64_vec_push(s->next, other))
		return -ENOMEM;
	return 0;
}

static int walk(struct graph *g, struct u64_vec *start)
{
	struct u64_vec cur = *start, next = { 0 };
	int rc = 0;
	for (int d = 0; d < g->depth && cur.n && !rc; d++) {
		for (size_t i = 0; i < cur.n && !rc; i++) {
			struct step s = { g, (size_t)cur.v[i], &next, 0 };
			const struct ent *e = &g->ents[cur.v[i]];
			rc = g->down ? prov_derived(g->t, e->ino, e->version, step_cb, &s)
				     : prov_sources(g->t, e->ino, e->version, step_cb, &s);
		}
		free(cur.v);
		cur = next;
		next = (struct u64_vec){ 0 };
	}
	free(cur.v);
	*start = (struct u64_vec){ 0 };
	/* the writers of every version shown */
	for (size_t i = 0; i < g->nents; i++)
		for (size_t k = 0; g->ents[i].have_pv && k < g->ents[i].pv.ngen; k++)
			act_of(g, g->ents[i].pv.gen[k]);
	for (size_t i = 0, n = g->nacts; i < n; i++)
		if (g->acts[i].have && g->acts[i].p.job != g->acts[i].p.id)
			act_of(g, g->acts[i].p.job);
	return rc;
}

static void graph_free(struct graph *g)
{
	for (size_t i = 0; i < g->nents; i++)
		free(g->ents[i].path);
	for (size_t i = 0; i < g->nacts; i++)
		prov_proc_free(&g->acts[i].p);
	free(g->ents);
	free(g->acts);
	free(g->edges);
}

/* ---------------------------------------------------------------- text */

static char *command_line(const struct prov_proc *p)
{
	size_t n = p->argv_len;
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		s[i] = p->argv[i] ? p->argv[i] : ' ';
	while (n && s[n - 1] == ' ')
		n--;
	s[n] = '\0';
	if (!n) {
		free(s);
		s = strdup(p->exe ? p->exe : "?");
	}
	return s;
}

static void time_text(int64_t ns, char *buf, size_t len)
{
	mfs_format_time(ns, buf, len);
}

static void print_ent(const struct ent *e)
{
	printf("%s  v%llu", e->path ? e->path : "?", (unsigned long long)e->version);
	if (e->deleted)
		printf("  (deleted)");
	if (e->have_pv) {
		char t[64];
		time_text((int64_t)e->pv.mtime.tv_sec * 1000000000LL + e->pv.mtime.tv_nsec, t, sizeof t);
		printf("  %llu bytes  %s", (unsigned long long)e->pv.size, t);
	}
	putchar('\n');
}

static void print_act(const struct graph *g, uint64_t id, const char *how)
{
	const struct act *a = act_get(g, id);
	if (!a || !a->have) {
		printf("%s process %llu (not recorded)\n", how, (unsigned long long)id);
		return;
	}
	char *cmd = command_line(&a->p), t[64];
	time_text(a->p.start_ns, t, sizeof t);
	printf("%s %s  [pid %u, started %s, uid %u]", how, cmd ? cmd : "?", a->p.pid, t, a->p.uid);
	free(cmd);
	const struct act *job = a->p.job && a->p.job != a->p.id ? act_get(g, a->p.job) : NULL;
	if (job && job->have) {
		char *jc = command_line(&job->p);
		printf("  in: %s", jc ? jc : "?");
		free(jc);
	}
	putchar('\n');
}

struct tree {
	const struct graph *g;
	bool *shown;
	char prefix[4096];
};

static void tree_ent(struct tree *tr, size_t i, int depth);

static void tree_children_up(struct tree *tr, size_t i, int depth)
{
	const struct graph *g = tr->g;
	const struct ent *e = &g->ents[i];
	size_t plen = strlen(tr->prefix);
	size_t ngen = e->have_pv ? e->pv.ngen : 0;
	if (ngen == 0) {
		/* a version first seen being read: written with capture off */
		size_t nsrc = 0;
		for (size_t k = 0; k < g->nedges; k++)
			nsrc += g->edges[k].to == i;
		if (!nsrc && e->have_pv)
			printf("%s└── (no recorded writer)\n", tr->prefix);
		return;
	}
	for (size_t k = 0; k < ngen; k++) {
		bool last = k + 1 == ngen;
		printf("%s%s", tr->prefix, last ? "└── " : "├── ");
		print_act(g, e->pv.gen[k], "written by");
		if (plen + 8 < sizeof tr->prefix)
			strcat(tr->prefix, last ? "    " : "│   ");
		size_t n = 0, total = 0;
		for (size_t x = 0; x < g->nedges; x++)
			total += g->edges[x].to == i;
		/* the sources are shown under the first writer */
		for (size_t x = 0; k == 0 && x < g->nedges; x++) {
			if (g->edges[x].to != i)
				continue;
			bool lastsrc = ++n == total;
			printf("%s%s", tr->prefix, lastsrc ? "└── " : "├── ");
			size_t inner = strlen(tr->prefix);
			if (inner + 8 < sizeof tr->prefix)
				strcat(tr->prefix, lastsrc ? "    " : "│   ");
			if (g->edges[x].user != e->pv.gen[k]) {
				const struct act *u = act_get(g, g->edges[x].user);
				char *uc = u && u->have ? command_line(&u->p) : NULL;
				printf("read by %s: ", uc ? uc : "another process of the job");
				free(uc);
			}
			tree_ent(tr, g->edges[x].from, depth + 1);
			tr->prefix[inner] = '\0';
		}
		tr->prefix[plen] = '\0';
	}
}

static void tree_children_down(struct tree *tr, size_t i, int depth)
{
	const struct graph *g = tr->g;
	size_t total = 0, n = 0;
	for (size_t x = 0; x < g->nedges; x++)
		total += g->edges[x].from == i;
	size_t plen = strlen(tr->prefix);
	for (size_t x = 0; x < g->nedges; x++) {
		if (g->edges[x].from != i)
			continue;
		const struct ent *d = &g->ents[g->edges[x].to];
		bool last = ++n == total;
		printf("%s%s", tr->prefix, last ? "└── " : "├── ");
		print_act(g, d->have_pv && d->pv.ngen ? d->pv.gen[0] : g->edges[x].user, "read by");
		if (plen + 8 < sizeof tr->prefix)
			strcat(tr->prefix, last ? "    " : "│   ");
		printf("%s└── wrote ", tr->prefix);
		size_t inner = strlen(tr->prefix);
		if (inner + 8 < sizeof tr->prefix)
			strcat(tr->prefix, "    ");
		tree_ent(tr, g->edges[x].to, depth + 1);
		tr->prefix[plen] = '\0';
	}
}

static void tree_ent(struct tree *tr, size_t i, int depth)
{
	print_ent(&tr->g->ents[i]);
	if (tr->shown[i]) {
		bool more = false;
		for (size_t x = 0; x < tr->g->nedges; x++)
			more |= tr->g->down ? tr->g->edges[x].from == i : tr->g->edges[x].to == i;
		if (more)
			printf("%s└── (shown above)\n", tr->prefix);
		return;
	}
	tr->shown[i] = true;
	if (tr->g->down)
		tree_children_down(tr, i, depth);
	else
		tree_children_up(tr, i, depth);
}

/* ---------------------------------------------------------------- JSON */

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static json_t *jstr(const char *s)
{
	json_t *j = s ? json_string(s) : NULL;
	return j ? j : json_string("?");
}

static json_t *graph_json(const struct graph *g, size_t root)
{
	char t[64];
	json_t *files = json_array(), *procs = json_array(), *edges = json_array();
	for (size_t i = 0; i < g->nents; i++) {
		const struct ent *e = &g->ents[i];
		json_t *o = json_pack("{s:I,s:I,s:o,s:b}", "ino", (json_int_t)e->ino, "version", (json_int_t)e->version,
				      "path", jstr(e->path), "deleted", e->deleted);
		if (e->have_pv) {
			json_object_set_new(o, "size", json_integer((json_int_t)e->pv.size));
			time_text((int64_t)e->pv.mtime.tv_sec * 1000000000LL + e->pv.mtime.tv_nsec, t, sizeof t);
			json_object_set_new(o, "mtime", json_string(t));
			time_text(e->pv.time_ns, t, sizeof t);
			json_object_set_new(o, "time", json_string(t));
			if (e->pv.has_digest) {
				char hx[2 * PROV_DIGEST_LEN + 1];
				hex(e->pv.digest, PROV_DIGEST_LEN, hx);
				json_object_set_new(o, "sha256", json_string(hx));
			}
			json_t *gen = json_array();
			for (size_t k = 0; k < e->pv.ngen; k++)
				json_array_append_new(gen, json_integer((json_int_t)e->pv.gen[k]));
			json_object_set_new(o, "generated_by", gen);
		}
		json_array_append_new(files, o);
	}
	for (size_t i = 0; i < g->nacts; i++) {
		const struct act *a = &g->acts[i];
		json_t *o = json_pack("{s:I}", "id", (json_int_t)a->p.id);
		if (a->have) {
			time_text(a->p.start_ns, t, sizeof t);
			json_object_set_new(o, "pid", json_integer(a->p.pid));
			json_object_set_new(o, "start", json_string(t));
			json_object_set_new(o, "exe", jstr(a->p.exe));
			json_object_set_new(o, "argv", argv_json(a->p.argv, a->p.argv_len));
			json_object_set_new(o, "cwd", jstr(a->p.cwd ? a->p.cwd : ""));
			json_object_set_new(o, "uid", json_integer(a->p.uid));
			json_object_set_new(o, "gid", json_integer(a->p.gid));
			json_object_set_new(o, "ppid", json_integer(a->p.ppid));
			json_object_set_new(o, "parent", json_integer((json_int_t)a->p.parent));
			json_object_set_new(o, "job", json_integer((json_int_t)a->p.job));
		}
		json_array_append_new(procs, o);
	}
	for (size_t i = 0; i < g->nedges; i++) {
		const struct edge *x = &g->edges[i];
		json_array_append_new(edges, json_pack("{s:I,s:I,s:I,s:I,s:I}", "ino", (json_int_t)g->ents[x->to].ino,
						       "version", (json_int_t)g->ents[x->to].version, "from_ino",
						       (json_int_t)g->ents[x->from].ino, "from_version",
						       (json_int_t)g->ents[x->from].version, "used_by",
						       (json_int_t)x->user));
	}
	return json_pack("{s:s,s:{s:I,s:I},s:o,s:o,s:o}", "direction", g->down ? "down" : "up", "root", "ino",
			 (json_int_t)g->ents[root].ino, "version", (json_int_t)g->ents[root].version, "files", files,
			 "processes", procs, "derived", edges);
}

static void ent_id(const struct ent *e, char *buf, size_t len)
{
	snprintf(buf, len, "metafs:file-%llu-v%llu", (unsigned long long)e->ino, (unsigned long long)e->version);
}

static void act_id(uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "metafs:process-%llu", (unsigned long long)id);
}

/* W3C PROV-JSON (https://www.w3.org/Submission/prov-json/) */
static json_t *graph_prov(const struct graph *g)
{
	char id[96], id2[96], t[64];
	json_t *ent = json_object(), *act = json_object(), *gen = json_object(), *used = json_object(),
	       *der = json_object(), *inf = json_object();
	for (size_t i = 0; i < g->nents; i++) {
		const struct ent *e = &g->ents[i];
		ent_id(e, id, sizeof id);
		json_t *o = json_pack("{s:o,s:I,s:I}", "prov:label", jstr(e->path), "metafs:ino", (json_int_t)e->ino,
				      "metafs:version", (json_int_t)e->version);
		if (e->have_pv) {
			json_object_set_new(o, "metafs:size", json_integer((json_int_t)e->pv.size));
			if (e->pv.has_digest) {
				char hx[2 * PROV_DIGEST_LEN + 1];
				hex(e->pv.digest, PROV_DIGEST_LEN, hx);
				json_object_set_new(o, "metafs:sha256", json_string(hx));
			}
			for (size_t k = 0; k < e->pv.ngen; k++) {
				act_id(e->pv.gen[k], id2, sizeof id2);
				time_text(e->pv.time_ns, t, sizeof t);
				char gid[128];
				snprintf(gid, sizeof gid, "_:gen-%zu-%zu", i, k);
				json_object_set_new(gen, gid,
						    json_pack("{s:s,s:s,s:{s:s,s:s}}", "prov:entity", id, "prov:activity",
							      id2, "prov:time", "$", t, "type", "xsd:dateTime"));
			}
		}
		if (e->deleted)
			json_object_set_new(o, "metafs:deleted", json_true());
		json_object_set_new(ent, id, o);
	}
	for (size_t i = 0; i < g->nacts; i++) {
		const struct act *a = &g->acts[i];
		act_id(a->p.id, id, sizeof id);
		json_t *o = json_object();
		if (a->have) {
			char *cmd = command_line(&a->p);
			time_text(a->p.start_ns, t, sizeof t);
			json_object_set_new(o, "prov:label", jstr(cmd));
			json_object_set_new(o, "prov:startTime", json_string(t));
			json_object_set_new(o, "metafs:pid", json_integer(a->p.pid));
			json_object_set_new(o, "metafs:exe", jstr(a->p.exe));
			json_object_set_new(o, "metafs:uid", json_integer(a->p.uid));
			free(cmd);
			if (a->p.job && a->p.job != a->p.id) {
				char iid[128];
				act_id(a->p.job, id2, sizeof id2);
				snprintf(iid, sizeof iid, "_:job-%zu", i);
				json_object_set_new(inf, iid, json_pack("{s:s,s:s}", "prov:informed", id,
									"prov:informant", id2));
			}
		}
		json_object_set_new(act, id, o);
	}
	for (size_t i = 0; i < g->nedges; i++) {
		const struct edge *x = &g->edges[i];
		char uid[64], did[64];
		ent_id(&g->ents[x->to], id, sizeof id);
		ent_id(&g->ents[x->from], id2, sizeof id2);
		char aid[96];
		act_id(x->user, aid, sizeof aid);
		snprintf(uid, sizeof uid, "_:used-%zu", i);
		snprintf(did, sizeof did, "_:derived-%zu", i);
		json_object_set_new(used, uid, json_pack("{s:s,s:s}", "prov:activity", aid, "prov:entity", id2));
		json_object_set_new(der, did, json_pack("{s:s,s:s,s:s}", "prov:generatedEntity", id,
							"prov:usedEntity", id2, "prov:activity", aid));
	}
	return json_pack("{s:{s:s},s:o,s:o,s:o,s:o,s:o,s:o}", "prefix", "metafs", "urn:metafs:", "entity", ent,
			 "activity", act, "wasGeneratedBy", gen, "used", used, "wasDerivedFrom", der, "wasInformedBy",
			 inf);
}

/* ---------------------------------------------------------------- DOT */

static void dot_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void graph_dot(const struct graph *g, FILE *f)
{
	fputs("digraph lineage {\n  rankdir=BT;\n  node [fontname=\"sans-serif\", fontsize=10];\n", f);
	char buf[PATH_MAX + 64];
	for (size_t i = 0; i < g->nents; i++) {
		const struct ent *e = &g->ents[i];
		snprintf(buf, sizeof buf, "%s\nv%llu%s", e->path ? e->path : "?", (unsigned long long)e->version,
			 e->deleted ? " (deleted)" : "");
		fprintf(f, "  f%llu_%llu [shape=ellipse, style=filled, fillcolor=\"#fffbe6\", label=",
			(unsigned long long)e->ino, (unsigned long long)e->version);
		dot_str(f, buf);
		fputs("];\n", f);
	}
	for (size_t i = 0; i < g->nacts; i++) {
		const struct act *a = &g->acts[i];
		char *cmd = a->have ? command_line(&a->p) : NULL;
		snprintf(buf, sizeof buf, "%s\npid %u", cmd ? cmd : "?", a->have ? a->p.pid : 0);
		free(cmd);
		fprintf(f, "  p%llu [shape=box, style=filled, fillcolor=\"#e6f0ff\", label=", (unsigned long long)a->p.id);
		dot_str(f, buf);
		fputs("];\n", f);
	}
	for (size_t i = 0; i < g->nents; i++) {
		const struct ent *e = &g->ents[i];
		for (size_t k = 0; e->have_pv && k < e->pv.ngen; k++)
			fprintf(f, "  f%llu_%llu -> p%llu [label=\"wasGeneratedBy\"];\n", (unsigned long long)e->ino,
				(unsigned long long)e->version, (unsigned long long)e->pv.gen[k]);
	}
	for (size_t i = 0; i < g->nedges; i++) {
		const struct ent *from = &g->ents[g->edges[i].from];
		fprintf(f, "  p%llu -> f%llu_%llu [label=\"used\"];\n", (unsigned long long)g->edges[i].user,
			(unsigned long long)from->ino, (unsigned long long)from->version);
	}
	fputs("}\n", f);
}

static int graph_svg(const struct graph *g)
{
	int fds[2];
	if (pipe(fds))
		return -errno;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		dup2(fds[0], 0);
		close(fds[0]);
		close(fds[1]);
		execlp("dot", "dot", "-Tsvg", (char *)NULL);
		fprintf(stderr, "metafs: --svg needs Graphviz's dot, which cannot be run: %s"
				" (install graphviz, or use --dot)\n",
			strerror(errno));
		_exit(127);
	}
	close(fds[0]);
	FILE *f = fdopen(fds[1], "w");
	if (!f) {
		close(fds[1]);
		return -errno;
	}
	signal(SIGPIPE, SIG_IGN);
	graph_dot(g, f);
	fclose(f);
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* ---------------------------------------------------------------- command */

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || !*s || *s == '-')
		return -1;
	*out = v;
	return 0;
}

static void no_lineage(const char *file, int rc)
{
	if (rc == -ENOENT)
		die_msg("%s: no lineage recorded (no version of it was written or read while capture was on)",
			file);
	else
		die_msg("%s: cannot read its lineage: %s", file, strerror(-rc));
}

int cmd_lineage(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "up", no_argument, NULL, 'u' },	{ "down", no_argument, NULL, 'D' },
		{ "depth", required_argument, NULL, 'd' }, { "version", required_argument, NULL, 'v' },
		{ "ino", required_argument, NULL, 'i' },	{ "json", no_argument, NULL, 'j' },
		{ "prov-json", no_argument, NULL, 'p' }, { "dot", no_argument, NULL, 'g' },
		{ "svg", no_argument, NULL, 's' },	{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool down = false;
	uint64_t depth = 20, version = 0, ino = 0;
	enum format fmt = F_TREE;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'u': down = false; break;
		case 'D': down = true; break;
		case 'd':
			if (parse_u64(optarg, &depth) || depth == 0 || depth > 100000) {
				die_msg("--depth %s: not a number from 1 to 100000", optarg);
				return 2;
			}
			break;
		case 'v':
			if (parse_u64(optarg, &version) || version == 0) {
				die_msg("--version %s: not a version number (1, 2, ...)", optarg);
				return 2;
			}
			break;
		case 'i':
			if (parse_u64(optarg, &ino) || ino == 0) {
				die_msg("--ino %s: not an inode number", optarg);
				return 2;
			}
			break;
		case 'j': fmt = F_JSON; break;
		case 'p': fmt = F_PROV; break;
		case 'g': fmt = F_DOT; break;
		case 's': fmt = F_SVG; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return 2;
		}
	}
	if (optind != argc - 1) {
		fputs(usage_text, stderr);
		return 2;
	}
	const char *file = argv[optind];
	struct stat st;
	if (!ino) {
		if (lstat(file, &st) != 0) {
			die_msg("%s: %s", file, strerror(errno));
			return 1;
		}
		if (!S_ISREG(st.st_mode)) {
			die_msg("%s: not a regular file (lineage is kept for files' contents)", file);
			return 1;
		}
		ino = st.st_ino;
	}
	char vol[PATH_MAX];
	struct mfs_volume *v;
	if (open_volume_ro(file, vol, sizeof vol, &v))
		return 1;
	struct graph g = { .down = down, .depth = (int)depth };
	int rc = v->store->ops->begin_read(v->store, &g.t);
	if (rc) {
		die_msg("%s: cannot read the volume: %s", vol, strerror(-rc));
		mfs_close(v);
		return 1;
	}
	struct u64_vec start = { 0 };
	size_t root = 0;
	bool added;
	if (version || !down) {
		if (!version && (rc = prov_current(g.t, ino, &version))) {
			no_lineage(file, rc);
			goto out;
		}
		struct prov_version pv;
		if ((rc = prov_version_get(g.t, ino, version, &pv))) {
			die_msg("%s: no version %llu recorded", file, (unsigned long long)version);
			goto out;
		}
		root = ent_of(&g, ino, version, &added);
		rc = root == SIZE_MAX ? -ENOMEM : u64_vec_push(&start, root);
	} else {
		/* every version of the file */
		uint64_t cur;
		if ((rc = prov_current(g.t, ino, &cur))) {
			no_lineage(file, rc);
			goto out;
		}
		for (uint64_t ver = 1; ver <= cur && !rc; ver++) {
			struct prov_version pv;
			if (prov_version_get(g.t, ino, ver, &pv))
				continue;
			size_t at = ent_of(&g, ino, ver, &added);
			rc = at == SIZE_MAX ? -ENOMEM : u64_vec_push(&start, at);
		}
	}
	if (!rc)
		rc = walk(&g, &start);
	free(start.v);
	if (rc) {
		die_msg("%s: cannot read its lineage: %s", file, strerror(-rc));
		goto out;
	}
	switch (fmt) {
	case F_TREE: {
		struct tree tr = { &g, calloc(g.nents ? g.nents : 1, sizeof(bool)), "" };
		if (!tr.shown) {
			rc = -ENOMEM;
			break;
		}
		for (size_t i = 0; i < g.nents; i++) {
			bool is_start = down && !version ? g.ents[i].ino == ino : i == root;
			if (is_start)
				tree_ent(&tr, i, 0);
		}
		free(tr.shown);
		break;
	}
	case F_JSON:
	case F_PROV: {
		json_t *o = fmt == F_JSON ? graph_json(&g, root) : graph_prov(&g);
		char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		if (s)
			puts(s);
		else
			rc = -ENOMEM;
		free(s);
		json_decref(o);
		break;
	}
	case F_DOT:
		graph_dot(&g, stdout);
		break;
	case F_SVG:
		rc = graph_svg(&g);
		if (rc == -EIO)
			die_msg("dot could not draw the graph");
		break;
	}
	if (rc && rc != -EIO)
		die_msg("%s: %s", file, strerror(-rc));
out:
	v->store->ops->abort(g.t);
	graph_free(&g);
	mfs_close(v);
	if (fflush(stdout) != 0)
		return 1;
	return rc ? 1 : 0;
}
