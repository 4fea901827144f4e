/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Elasticsearch / OpenSearch search backend: the same documents, queries
 * and answers as the SQLite backend, kept in a cluster over its REST API
 * (libcurl, JSON by jansson).
 *
 * Configuration: VOLUME/search.conf, "key = value" lines:
 *   backend        elasticsearch (or opensearch: the same protocol)
 *   url            a node, e.g. https://es1:9200; repeat the line, or list
 *                  several separated by spaces, for failover
 *   index          the alias queries and writes go through (required)
 *   ca_file        CA certificates to verify the nodes' TLS certificates
 *   user           basic authentication; the password comes from the
 *   password_file  environment (METAFS_ES_PASSWORD) or this file
 *   api_key_file   an API key ("Authorization: ApiKey"), or METAFS_ES_API_KEY
 *   timeout        seconds a request may take (default 30)
 *
 * The alias points at one concrete index, ALIAS-<hex time>. A rebuild fills
 * a new concrete index and moves the alias in one _aliases call, so queries
 * never see a half-built index.
 *
 * Documents (id = inode number): the inode's attributes, its names (parent,
 * name, path) as an array, tags, the xattr text, and the typed xattr fields
 * under x.<field name, escaped>#n (numbers), #s (strings, and the words
 * true/false of booleans), #b (booleans as 1/0); xf keeps the field rows in
 * order for --json, unindexed. Every write carries the inode's version with
 * version_type=external_gte, so a replay or a late older write changes
 * nothing. A deleted inode leaves a tombstone document (deleted: true) with
 * its last version: Elasticsearch forgets the versions of deleted documents
 * after index.gc_deletes (60 s), and a late write of an older state would
 * otherwise bring the file back. Inode numbers are never reused.
 *
 * Writes are buffered into _bulk requests (by count and bytes); the cursor
 * and the volume's identity live in a document "state", written only after
 * every item of the batch is acknowledged. Items refused for a transient
 * reason (429, 5xx) are sent again with backoff; items refused for good
 * (a document the mapping rejects) are logged and parked in
 * search-parked.jsonl beside search.conf, and the batch goes on.
 *
 * Queries: one hit is a document under one of its names, as in the SQLite
 * backend, and name: and path: terms concern the name being listed. The
 * cluster is asked for the documents that could match under some name (a
 * superset: name and path terms match any name), with every other term of
 * the query repeated as a named clause, so that each hit says which of them
 * it satisfies (matched_queries). Each of its names is then checked against
 * the whole query here, name terms evaluated on that name (name words by
 * the same FTS5 tokenizer as the SQLite backend, globs by SQLite's GLOB).
 * Pages come sorted by the cluster (search_after); the names of a page are
 * put in the final order with a small buffer, because a document's sort key
 * is its first name while its other names sort later.
 *
 * Bytes that are not UTF-8 (JSON needs UTF-8) are carried as the code
 * points U+10FF00 + byte in names and paths, and mapped back in results.
 */
#include "indexer.h"
#include "common.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BULK_MAX_ITEMS 5000
#define BULK_MAX_BYTES (8u << 20)
#define PAGE 200
#define ATTEMPTS 7
#define CACHE_MAX 50000
/* Elasticsearch versions are signed 64-bit: a deletion of unknown version
 * gets the highest (inode numbers are never reused) */
#define VERSION_MAX 9000000000000000000ULL

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_add(struct buf *b, const void *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int buf_str(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

struct conf {
	char **urls;
	size_t nurls;
	char *index, *ca_file, *user, *password, *api_key, *parked;
	long timeout;
};

struct item {
	size_t off, len; /* action and source lines in the bulk buffer */
};

/* A _bulk request being built: NDJSON, and where each item lies in it. */
struct bulk {
	struct buf buf;
	struct item *items;
	size_t n, cap;
};

struct es {
	struct idx_backend base;
	struct conf c;
	CURL *curl;
	struct curl_slist *hdr_json, *hdr_ndjson;
	size_t node; /* the url in use */
	char *target; /* the index written and read: the alias, or a new concrete index */
	char *old; /* for install: the concrete index the alias pointed at */
	bool created;
	struct bulk bulk; /* the batch's writes */
	char volume[64];
	bool have_volume;
	json_t *cache; /* inode -> document, from hits and gets */
	json_t *fields; /* the mapping's xattr fields, for has_attr */
	sqlite3 *mem; /* name words: one-row FTS5 table */
	sqlite3_stmt *w_put, *w_match;
	char *w_text;
	char err[512];
};

#define ES(b) ((struct es *)(b))

/* ---------------------------------------------------------------- configuration */

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static char *read_secret(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	char line[4096] = "";
	if (!fgets(line, sizeof line, f))
		line[0] = '\0';
	fclose(f);
	return strdup(trim(line));
}

static void conf_free(struct conf *c)
{
	for (size_t i = 0; i < c->nurls; i++)
		free(c->urls[i]);
	free(c->urls);
	free(c->index);
	free(c->ca_file);
	free(c->user);
	free(c->password);
	free(c->api_key);
	free(c->parked);
	memset(c, 0, sizeof *c);
}

static bool index_name_ok(const char *s)
{
	if (!*s || strlen(s) > 200 || strchr("-_+", *s) || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (const char *p = s; *p; p++)
		if (isupper((unsigned char)*p) || strchr("\\/*?\"<>| ,#:", *p))
			return false;
	return true;
}

static int conf_load(const char *path, struct conf *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof *c);
	c->timeout = 30;
	FILE *f = fopen(path, "r");
	if (!f) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	char line[4096], *pwfile = NULL, *keyfile = NULL;
	int rc = 0, lineno = 0;
	bool backend = false;
	while (!rc && fgets(line, sizeof line, f)) {
		lineno++;
		char *l = trim(line);
		if (!*l || *l == '#')
			continue;
		char *eq = strchr(l, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected key = value", path, lineno);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		char *k = trim(l), *v = trim(eq + 1);
		char **dst = NULL;
		if (!strcmp(k, "backend")) {
			if (strcmp(v, "elasticsearch") && strcmp(v, "opensearch")) {
				snprintf(err, errlen, "%s:%d: backend %s: expected elasticsearch or opensearch", path,
					 lineno, v);
				rc = -EINVAL;
			}
			backend = true;
		} else if (!strcmp(k, "url")) {
			for (char *sv, *u = strtok_r(v, " \t", &sv); u && !rc; u = strtok_r(NULL, " \t", &sv)) {
				size_t n = strlen(u);
				while (n && u[n - 1] == '/')
					u[--n] = '\0';
				char **nu = realloc(c->urls, (c->nurls + 1) * sizeof *nu);
				if (!nu || !(nu[c->nurls] = strdup(u)))
					rc = -ENOMEM;
				else
					c->urls = nu, c->nurls++;
			}
		} else if (!strcmp(k, "index")) {
			dst = &c->index;
		} else if (!strcmp(k, "ca_file")) {
			dst = &c->ca_file;
		} else if (!strcmp(k, "user")) {
			dst = &c->user;
		} else if (!strcmp(k, "password_file")) {
			dst = &pwfile;
		} else if (!strcmp(k, "api_key_file")) {
			dst = &keyfile;
		} else if (!strcmp(k, "timeout")) {
			c->timeout = atol(v);
			if (c->timeout <= 0) {
				snprintf(err, errlen, "%s:%d: timeout %s: expected seconds", path, lineno, v);
				rc = -EINVAL;
			}
		} else {
			snprintf(err, errlen, "%s:%d: unknown key %s", path, lineno, k);
			rc = -EINVAL;
		}
		if (dst) {
			free(*dst);
			if (!(*dst = strdup(v)))
				rc = -ENOMEM;
		}
	}
	fclose(f);
	if (!rc && !backend) {
		snprintf(err, errlen, "%s: no backend line (backend = elasticsearch)", path);
		rc = -EINVAL;
	}
	if (!rc && !c->nurls) {
		snprintf(err, errlen, "%s: no url", path);
		rc = -EINVAL;
	}
	if (!rc && (!c->index || !index_name_ok(c->index))) {
		snprintf(err, errlen, "%s: %s", path,
			 c->index ? "index: not a valid index name (lowercase, no \\/*?\"<>| ,#:)" : "no index line");
		rc = -EINVAL;
	}
	const char *envpw = getenv("METAFS_ES_PASSWORD"), *envkey = getenv("METAFS_ES_API_KEY");
	if (!rc && envpw && *envpw)
		c->password = strdup(envpw);
	else if (!rc && pwfile && !(c->password = read_secret(pwfile, err, errlen)))
		rc = -EACCES;
	if (!rc && envkey && *envkey)
		c->api_key = strdup(envkey);
	else if (!rc && keyfile && !(c->api_key = read_secret(keyfile, err, errlen)))
		rc = -EACCES;
	if (!rc) {
		const char *slash = strrchr(path, '/');
		size_t dl = slash ? (size_t)(slash - path) : 1;
		c->parked = malloc(dl + 32);
		if (c->parked)
			snprintf(c->parked, dl + 32, "%.*s/search-parked.jsonl", (int)dl, slash ? path : ".");
	}
	free(pwfile);
	free(keyfile);
	if (rc)
		conf_free(c);
	return rc;
}

/* ---------------------------------------------------------------- bytes as JSON text */

/* Bytes as valid UTF-8: an invalid byte b becomes U+10FF00 + b. */
static json_t *jbytes(const char *p, size_t len)
{
	char *out = malloc(len * 4 + 1), *q = out;
	if (!out)
		return NULL;
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0;
	while (i < len) {
		unsigned c = u[i];
		size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		bool ok = n && i + n <= len && c != 0;
		for (size_t k = 1; ok && k < n; k++)
			ok = (u[i + k] & 0xc0) == 0x80;
		if (ok) {
			json_t *t = json_stringn((const char *)u + i, n); /* overlong forms, surrogates */
			ok = t != NULL;
			json_decref(t);
		}
		if (ok) {
			memcpy(q, u + i, n);
			q += n;
			i += n;
		} else {
			unsigned cp = 0x10FF00u + c;
			*q++ = (char)0xF4;
			*q++ = (char)(0x80 | ((cp >> 12) & 0x3F));
			*q++ = (char)(0x80 | ((cp >> 6) & 0x3F));
			*q++ = (char)(0x80 | (cp & 0x3F));
			i++;
		}
	}
	json_t *j = json_stringn(out, (size_t)(q - out));
	free(out);
	return j;
}

/* The reverse of jbytes, in place; returns the length. */
static size_t unbytes(char *s, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		unsigned char *u = (unsigned char *)s + i;
		if (i + 4 <= len && u[0] == 0xF4 && u[1] == 0x8F && (u[2] == 0xBC || u[2] == 0xBD || u[2] == 0xBE ||
								      u[2] == 0xBF)) {
			unsigned cp = ((u[0] & 7u) << 18) | ((u[1] & 0x3Fu) << 12) | ((u[2] & 0x3Fu) << 6) | (u[3] & 0x3Fu);
			s[o++] = (char)(cp - 0x10FF00u);
			i += 4;
		} else {
			s[o++] = s[i++];
		}
	}
	return o;
}

/* The field name of an xattr field: letters, digits and '-' kept, other
 * bytes as ~HH, so no dots (objects) and no leading '_'. */
static char *field_name(const char *key, char type)
{
	size_t n = strlen(key);
	char *out = malloc(n * 3 + 6), *q = out;
	if (!out)
		return NULL;
	q += sprintf(q, "x.");
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		if (isalnum(*p) || *p == '-')
			*q++ = (char)*p;
		else
			q += sprintf(q, "~%02X", *p);
	}
	*q++ = '#';
	*q++ = type;
	*q = '\0';
	return out;
}

/* ---------------------------------------------------------------- HTTP */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	return buf_add(arg, p, size * n) ? 0 : size * n;
}

static void es_log_err(struct es *e)
{
	log_warn("search cluster: %s", e->err);
}

/*
 * One request, to the nodes in turn: connection failures, 429 and 5xx
 * answers are tried again (on the next node for connection failures and
 * 5xx), with backoff, ATTEMPTS times. Returns the HTTP status (>= 100) and
 * the parsed body (NULL when empty or not JSON), or a negative errno.
 */
static int http(struct es *e, const char *method, const char *path, const char *body, size_t blen, bool ndjson,
		json_t **out)
{
	struct buf resp = { 0 };
	unsigned backoff_ms = 100;
	long status = 0;
	if (out)
		*out = NULL;
	for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
		resp.len = 0;
		char url[8192];
		snprintf(url, sizeof url, "%s%s", e->c.urls[e->node % e->c.nurls], path);
		CURL *h = e->curl;
		curl_easy_reset(h);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_TIMEOUT, e->c.timeout);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, ndjson ? e->hdr_ndjson : e->hdr_json);
		if (e->c.ca_file)
			curl_easy_setopt(h, CURLOPT_CAINFO, e->c.ca_file);
		if (e->c.user && !e->c.api_key) {
			curl_easy_setopt(h, CURLOPT_USERNAME, e->c.user);
			curl_easy_setopt(h, CURLOPT_PASSWORD, e->c.password ? e->c.password : "");
		}
		if (!strcmp(method, "HEAD"))
			curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
		else
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		if (body) {
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
		}
		CURLcode cc = curl_easy_perform(h);
		bool retry = false, next_node = false;
		if (cc != CURLE_OK) {
			snprintf(e->err, sizeof e->err, "%s %.200s: %s", method, url, curl_easy_strerror(cc));
			/* a certificate that does not verify will not verify next time */
			retry = cc != CURLE_PEER_FAILED_VERIFICATION && cc != CURLE_SSL_CACERT_BADFILE &&
				cc != CURLE_URL_MALFORMAT && cc != CURLE_UNSUPPORTED_PROTOCOL;
			next_node = true;
			status = 0;
		} else {
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
			if (status == 429 || status >= 500) {
				snprintf(e->err, sizeof e->err, "%s %.200s: HTTP %ld: %.200s", method, url, status,
					 resp.p ? resp.p : "");
				retry = true;
				next_node = status >= 500;
			}
		}
		if (!retry)
			break;
		if (attempt + 1 < ATTEMPTS) {
			/* quietly: a node down is routine, the error if all fail is not */
			log_debug("search cluster: %s; trying again", e->err);
			if (next_node)
				e->node++;
			mfs_sleep_us(backoff_ms * 1000);
			backoff_ms = backoff_ms < 3200 ? backoff_ms * 2 : backoff_ms;
		}
	}
	int rc;
	if (status == 0) {
		rc = -EIO;
	} else if (status == 429 || status >= 500) {
		rc = -EIO;
	} else {
		rc = (int)status;
		if (out && resp.len)
			*out = json_loadb(resp.p, resp.len, 0, NULL);
		if (status >= 400 && status != 404 && status != 409) {
			snprintf(e->err, sizeof e->err, "%s %s: HTTP %ld: %.300s", method, path, status,
				 resp.p ? resp.p : "");
		}
	}
	free(resp.p);
	return rc;
}

/* A request whose answer must be 2xx; -EIO (with e->err) otherwise. */
static int http_ok(struct es *e, const char *method, const char *path, json_t *body, json_t **out)
{
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
	if (body && !s)
		return -ENOMEM;
	int st = http(e, method, path, s, s ? strlen(s) : 0, false, out);
	free(s);
	if (st < 0)
		return st;
	if (st >= 300) {
		if (out) {
			json_decref(*out);
			*out = NULL;
		}
		if (st == 404)
			return -ENOENT;
		if (st == 401 || st == 403)
			return -EACCES;
		return -EIO;
	}
	return 0;
}

/* ---------------------------------------------------------------- the index */

static const char *const MAPPING =
	"{\"settings\":{\"index\":{\"number_of_shards\":1,\"mapping.total_fields.limit\":100000},"
	"\"analysis\":{\"tokenizer\":{\"metafs_words\":{\"type\":\"pattern\",\"pattern\":\"[^\\\\p{L}\\\\p{N}\\\\p{Co}]+\"},"
	"\"metafs_tree\":{\"type\":\"path_hierarchy\"}},"
	"\"analyzer\":{\"metafs_words\":{\"type\":\"custom\",\"tokenizer\":\"metafs_words\","
	"\"filter\":[\"lowercase\",\"asciifolding\"]},"
	"\"metafs_tree\":{\"type\":\"custom\",\"tokenizer\":\"metafs_tree\"}}}},"
	"\"mappings\":{\"dynamic\":\"strict\","
	"\"dynamic_templates\":["
	"{\"xnum\":{\"path_match\":\"x.*\",\"match\":\"*#n\",\"mapping\":{\"type\":\"double\"}}},"
	"{\"xstr\":{\"path_match\":\"x.*\",\"match\":\"*#s\",\"mapping\":{\"type\":\"keyword\",\"ignore_above\":8191}}},"
	"{\"xbool\":{\"path_match\":\"x.*\",\"match\":\"*#b\",\"mapping\":{\"type\":\"byte\"}}}],"
	"\"properties\":{\"ino\":{\"type\":\"long\"},\"version\":{\"type\":\"long\"},\"deleted\":{\"type\":\"boolean\"},"
	"\"fmt\":{\"type\":\"long\"},\"perm\":{\"type\":\"long\"},\"uid\":{\"type\":\"long\"},\"gid\":{\"type\":\"long\"},"
	"\"nlink\":{\"type\":\"long\"},\"size\":{\"type\":\"long\"},\"atime\":{\"type\":\"long\"},"
	"\"mtime\":{\"type\":\"long\"},\"ctime\":{\"type\":\"long\"},"
	"\"names\":{\"properties\":{\"parent\":{\"type\":\"long\"},"
	"\"name\":{\"type\":\"keyword\"},"
	"\"path\":{\"type\":\"keyword\",\"fields\":{\"tree\":{\"type\":\"text\",\"analyzer\":\"metafs_tree\","
	"\"search_analyzer\":\"keyword\"}}},"
	"\"nw\":{\"type\":\"text\",\"analyzer\":\"metafs_words\"},"
	"\"pw\":{\"type\":\"text\",\"analyzer\":\"metafs_words\"}}},"
	"\"tags\":{\"type\":\"keyword\"},\"text\":{\"type\":\"text\",\"analyzer\":\"metafs_words\"},"
	"\"lin_gen\":{\"type\":\"keyword\"},"
	"\"x\":{\"type\":\"object\",\"dynamic\":true},\"xf\":{\"type\":\"object\",\"enabled\":false},"
	"\"cursor\":{\"type\":\"long\",\"index\":false},\"volume\":{\"type\":\"keyword\"}}}}";

/* The concrete index an alias points at (-ENOENT: none). */
static int alias_target(struct es *e, char **out)
{
	char path[512];
	snprintf(path, sizeof path, "/_alias/%s", e->c.index);
	json_t *r = NULL;
	int rc = http_ok(e, "GET", path, NULL, &r);
	if (rc)
		return rc;
	const char *k;
	json_t *v;
	*out = NULL;
	json_object_foreach(r, k, v) {
		*out = strdup(k);
		break;
	}
	json_decref(r);
	return *out ? 0 : -ENOENT;
}

static int state_get(struct es *e, json_t **src)
{
	char path[512];
	snprintf(path, sizeof path, "/%s/_doc/state", e->target);
	json_t *r = NULL;
	int rc = http_ok(e, "GET", path, NULL, &r);
	if (rc)
		return rc;
	json_t *s = json_object_get(r, "_source");
	*src = s ? json_incref(s) : NULL;
	json_decref(r);
	return *src ? 0 : -ENOENT;
}

/* ---------------------------------------------------------------- writes */

static int es_begin(struct idx_backend *b)
{
	struct es *e = ES(b);
	e->bulk.buf.len = 0;
	e->bulk.n = 0;
	return 0;
}

static void es_rollback(struct idx_backend *b)
{
	es_begin(b);
}

static void park(struct es *e, const char *item, size_t len, json_t *error)
{
	char *why = error ? json_dumps(error, JSON_COMPACT) : NULL;
	log_error("search cluster refused a document for good, parked in %s: %.300s", e->c.parked,
		  why ? why : "(no reason given)");
	FILE *f = e->c.parked ? fopen(e->c.parked, "a") : NULL;
	if (f) {
		/* the action line and the document, then the reason */
		fprintf(f, "{\"error\":%s,\"item\":", why ? why : "null");
		json_t *it = json_stringn(item, len);
		char *s = it ? json_dumps(it, JSON_ENCODE_ANY) : NULL;
		fprintf(f, "%s}\n", s ? s : "null");
		free(s);
		json_decref(it);
		fclose(f);
	}
	free(why);
}

/* Sends a bulk's items; resends those refused for a transient reason. */
static int flush(struct es *e, struct bulk *bk)
{
	unsigned backoff_ms = 200;
	char path[512];
	snprintf(path, sizeof path, "/%s/_bulk", e->target);
	for (int round = 0; bk->n; round++) {
		json_t *r = NULL;
		int st = http(e, "POST", path, bk->buf.p, bk->buf.len, true, &r);
		if (st < 0 || st >= 300 || !r) {
			if (st >= 300)
				snprintf(e->err + strlen(e->err), sizeof e->err - strlen(e->err), " (bulk of %zu)",
					 bk->n);
			json_decref(r);
			return -EIO;
		}
		json_t *items = json_object_get(r, "items");
		if (!json_is_array(items) || json_array_size(items) != bk->n) {
			snprintf(e->err, sizeof e->err, "a _bulk answer without one item a request item");
			json_decref(r);
			return -EIO;
		}
		/* keep the items to send again, in order, at the front */
		struct buf again = { 0 };
		size_t kept = 0;
		int rc = 0;
		for (size_t i = 0; i < bk->n && !rc; i++) {
			json_t *it = json_array_get(items, i), *res = NULL;
			const char *k;
			json_object_foreach(it, k, res)
				break;
			long status = (long)json_integer_value(json_object_get(res, "status"));
			const struct item *m = &bk->items[i];
			if (status == 429 || status >= 500) {
				if (buf_add(&again, bk->buf.p + m->off, m->len))
					rc = -ENOMEM;
				else
					bk->items[kept++] = (struct item){ again.len - m->len, m->len };
			} else if (status >= 400 && status != 409) {
				/* 409: a newer version is there already */
				park(e, bk->buf.p + m->off, m->len, json_object_get(res, "error"));
			}
		}
		json_decref(r);
		free(bk->buf.p);
		bk->buf = again;
		bk->n = kept;
		if (rc)
			return rc;
		if (!kept)
			break;
		if (round + 1 >= ATTEMPTS) {
			snprintf(e->err, sizeof e->err, "%zu documents still refused (429/5xx) after %d tries", kept,
				 ATTEMPTS);
			return -EIO;
		}
		log_warn("search cluster: %zu documents refused for now; sending them again", kept);
		mfs_sleep_us(backoff_ms * 1000);
		backoff_ms *= 2;
	}
	bk->buf.len = 0;
	bk->n = 0;
	return 0;
}

/* Adds one index action (the document replaces any of a lower version);
 * a full bulk is sent first. */
static int add_item(struct es *e, struct bulk *bk, uint64_t ino, uint64_t version, json_t *doc)
{
	char *src = json_dumps(doc, JSON_COMPACT);
	if (!src)
		return -ENOMEM;
	size_t slen = strlen(src);
	int rc = 0;
	if (bk->n && (bk->n >= BULK_MAX_ITEMS || bk->buf.len + slen > BULK_MAX_BYTES))
		rc = flush(e, bk);
	if (version > VERSION_MAX)
		version = VERSION_MAX;
	char action[160];
	snprintf(action, sizeof action,
		 "{\"index\":{\"_id\":\"%" PRIu64 "\",\"version\":%" PRIu64 ",\"version_type\":\"external_gte\"}}\n", ino,
		 version);
	size_t off = bk->buf.len;
	if (!rc && (mfs_array_reserve(&bk->items, &bk->cap, bk->n, sizeof *bk->items) ||
		    buf_str(&bk->buf, action) || buf_add(&bk->buf, src, slen) || buf_add(&bk->buf, "\n", 1)))
		rc = -ENOMEM;
	if (!rc)
		bk->items[bk->n++] = (struct item){ off, bk->buf.len - off };
	free(src);
	return rc;
}

static int es_commit(struct idx_backend *b, uint64_t cursor)
{
	struct es *e = ES(b);
	int rc = flush(e, &e->bulk);
	if (rc) {
		es_log_err(e);
		return rc;
	}
	json_t *st = json_pack("{s:I}", "cursor", (json_int_t)cursor);
	if (!st)
		return -ENOMEM;
	if (e->have_volume)
		json_object_set_new(st, "volume", json_string(e->volume));
	char path[512];
	snprintf(path, sizeof path, "/%s/_doc/state", e->target);
	rc = http_ok(e, "PUT", path, st, NULL);
	json_decref(st);
	if (rc)
		es_log_err(e);
	return rc;
}

struct fields {
	json_t *tags, *x, *xf;
	struct buf text;
	int rc;
};

static int add_tag(void *arg, const char *tag, size_t len)
{
	json_t *tags = ((struct fields *)arg)->tags;
	size_t i;
	json_t *v;
	json_array_foreach(tags, i, v)
		if (json_string_length(v) == len && !memcmp(json_string_value(v), tag, len))
			return 0;
	return json_array_append_new(tags, json_stringn(tag, len)) ? -ENOMEM : 0;
}

/* one field row: the typed value under x, and the row in xf */
static int field_row(void *arg, const char *key, const double *num, const char *str, size_t slen, bool boolean)
{
	struct fields *f = arg;
	if (f->rc)
		return f->rc;
	char type = boolean ? 'b' : num ? 'n' : 's';
	char *name = field_name(key, type);
	json_t *row = json_array();
	if (!name || !row) {
		free(name);
		json_decref(row);
		return f->rc = -ENOMEM;
	}
	json_array_append_new(row, json_string(key));
	json_array_append_new(row, num ? json_real(*num) : json_null());
	json_array_append_new(row, str ? json_stringn(str, slen) : json_null());
	json_array_append_new(f->xf, row);
	/* the object x holds the names without "x." */
	json_t *arr = json_object_get(f->x, name + 2);
	if (!arr)
		json_object_set_new(f->x, name + 2, arr = json_array());
	json_array_append_new(arr, boolean ? json_integer(*num != 0) : num ? json_real(*num) : json_stringn(str, slen));
	free(name);
	if (boolean) {
		/* booleans are also their word, as in the SQLite backend */
		name = field_name(key, 's');
		if (!name)
			return f->rc = -ENOMEM;
		arr = json_object_get(f->x, name + 2);
		if (!arr)
			json_object_set_new(f->x, name + 2, arr = json_array());
		json_array_append_new(arr, json_stringn(str, slen));
		free(name);
	}
	return 0;
}

static int add_text(void *arg, const char *text, size_t len)
{
	struct buf *b = &((struct fields *)arg)->text;
	return buf_add(b, text, len) || buf_add(b, "\n", 1) ? -ENOMEM : 0;
}

static int64_t ts_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static json_t *build_doc(const struct idx_doc *d, int *rcp)
{
	const struct inode_rec *in = &d->in;
	json_t *doc = json_pack("{s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "ino", (json_int_t)in->ino,
				"version", (json_int_t)(in->version > VERSION_MAX ? VERSION_MAX : in->version), "deleted", 0,
				"fmt", (json_int_t)(in->mode & S_IFMT), "perm", (json_int_t)(in->mode & 07777), "uid",
				(json_int_t)in->uid, "gid", (json_int_t)in->gid, "nlink", (json_int_t)in->nlink, "size",
				(json_int_t)in->size, "atime", (json_int_t)ts_ns(in->atime), "mtime",
				(json_int_t)ts_ns(in->mtime), "ctime", (json_int_t)ts_ns(in->ctime));
	json_t *names = json_array();
	struct fields f = { json_array(), json_object(), json_array(), { 0 }, 0 };
	int rc = doc && names && f.tags && f.x && f.xf ? 0 : -ENOMEM;
	for (size_t i = 0; i < d->nnames && !rc; i++) {
		const struct idx_name *n = &d->names[i];
		char *nw = idx_to_utf8(n->name, n->name_len), *pw = idx_to_utf8(n->path, n->path_len);
		json_t *o = nw && pw ? json_pack("{s:I,s:o,s:o,s:s,s:s}", "parent", (json_int_t)n->parent, "name",
						 jbytes(n->name, n->name_len), "path", jbytes(n->path, n->path_len),
						 "nw", nw, "pw", pw)
				     : NULL;
		if (!o || json_array_append_new(names, o))
			rc = -ENOMEM;
		free(nw);
		free(pw);
	}
	struct idx_field_sink sink = { add_tag, field_row, add_text, &f };
	if (!rc)
		rc = idx_doc_analyze(d, &sink);
	if (!rc) {
		json_object_set_new(doc, "names", names);
		json_object_set_new(doc, "tags", f.tags);
		json_t *gen = json_array();
		for (size_t i = 0; i < d->ngen; i++)
			json_array_append_new(gen, json_string(d->gen[i]));
		json_object_set_new(doc, "lin_gen", gen);
		json_object_set_new(doc, "text", json_string(f.text.p ? f.text.p : ""));
		json_object_set_new(doc, "x", f.x);
		json_object_set_new(doc, "xf", f.xf);
	} else {
		json_decref(names);
		json_decref(f.tags);
		json_decref(f.x);
		json_decref(f.xf);
		json_decref(doc);
		doc = NULL;
	}
	free(f.text.p);
	*rcp = rc;
	return doc;
}

static void cache_drop(struct es *e, uint64_t ino)
{
	char k[24];
	snprintf(k, sizeof k, "%" PRIu64, ino);
	json_object_del(e->cache, k);
}

static int es_put(struct idx_backend *b, const struct idx_doc *d)
{
	struct es *e = ES(b);
	int rc;
	json_t *doc = build_doc(d, &rc);
	if (!doc)
		return rc;
	cache_drop(e, d->in.ino);
	rc = add_item(e, &e->bulk, d->in.ino, d->in.version, doc);
	json_decref(doc);
	return rc;
}

static int es_del(struct idx_backend *b, uint64_t ino, uint64_t version)
{
	struct es *e = ES(b);
	if (version > VERSION_MAX)
		version = VERSION_MAX;
	json_t *doc = json_pack("{s:I,s:I,s:b}", "ino", (json_int_t)ino, "version", (json_int_t)version, "deleted", 1);
	if (!doc)
		return -ENOMEM;
	cache_drop(e, ino);
	int rc = add_item(e, &e->bulk, ino, version, doc);
	json_decref(doc);
	return rc;
}

/* ---------------------------------------------------------------- reads of one document */

/* The live document of an inode (borrowed from the cache); -ENOENT if none. */
static int doc_of(struct es *e, uint64_t ino, json_t **out)
{
	char k[24];
	snprintf(k, sizeof k, "%" PRIu64, ino);
	json_t *d = json_object_get(e->cache, k);
	if (!d) {
		char path[512];
		snprintf(path, sizeof path, "/%s/_doc/%" PRIu64, e->target, ino);
		json_t *r = NULL;
		int rc = http_ok(e, "GET", path, NULL, &r);
		if (rc == -ENOENT)
			return -ENOENT;
		if (rc) {
			es_log_err(e);
			return rc;
		}
		d = json_object_get(r, "_source");
		if (!d) {
			json_decref(r);
			return -ENOENT;
		}
		if (json_object_size(e->cache) >= CACHE_MAX)
			json_object_clear(e->cache);
		json_object_set(e->cache, k, d);
		json_decref(r);
	}
	if (json_is_true(json_object_get(d, "deleted")))
		return -ENOENT;
	*out = d;
	return 0;
}

/* A name's bytes from its JSON text (malloc'd, NUL-terminated). */
static char *raw(json_t *s, size_t *len)
{
	size_t n = json_string_length(s);
	char *p = malloc(n + 1);
	if (!p)
		return NULL;
	if (n)
		memcpy(p, json_string_value(s), n);
	*len = unbytes(p, n);
	p[*len] = '\0';
	return p;
}

static int es_paths_of(struct idx_backend *b, uint64_t ino, name_cb cb, void *arg)
{
	json_t *d;
	int rc = doc_of(ES(b), ino, &d);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	size_t i;
	json_t *n;
	json_array_foreach(json_object_get(d, "names"), i, n) {
		size_t len;
		char *p = raw(json_object_get(n, "path"), &len);
		if (!p)
			return -ENOMEM;
		rc = cb(arg, (uint64_t)json_integer_value(json_object_get(n, "parent")), p, len);
		free(p);
		if (rc)
			return rc < 0 ? rc : 0;
	}
	return 0;
}

static int es_cursor(struct idx_backend *b, uint64_t *seq)
{
	json_t *s = NULL;
	int rc = state_get(ES(b), &s);
	*seq = s ? (uint64_t)json_integer_value(json_object_get(s, "cursor")) : 0;
	json_decref(s);
	return rc == -ENOENT ? 0 : rc;
}

static int es_get_volume(struct idx_backend *b, char *uuid, size_t len)
{
	json_t *s = NULL;
	int rc = state_get(ES(b), &s);
	const char *v = s ? json_string_value(json_object_get(s, "volume")) : NULL;
	if (!rc && !v)
		rc = -ENOENT;
	if (!rc)
		snprintf(uuid, len, "%s", v);
	json_decref(s);
	return rc;
}

static int es_set_volume(struct idx_backend *b, const char *uuid)
{
	struct es *e = ES(b);
	snprintf(e->volume, sizeof e->volume, "%s", uuid);
	e->have_volume = true;
	return 0;
}

/* A document's attributes, under its name number `name`. */
static void hit_of(json_t *d, size_t name, struct idx_hit *h)
{
	json_t *n = json_array_get(json_object_get(d, "names"), name);
	*h = (struct idx_hit){
		.ino = (uint64_t)json_integer_value(json_object_get(d, "ino")),
		.mode = (uint32_t)(json_integer_value(json_object_get(d, "fmt")) |
				   json_integer_value(json_object_get(d, "perm"))),
		.uid = (uint32_t)json_integer_value(json_object_get(d, "uid")),
		.gid = (uint32_t)json_integer_value(json_object_get(d, "gid")),
		.nlink = (uint32_t)json_integer_value(json_object_get(d, "nlink")),
		.size = (uint64_t)json_integer_value(json_object_get(d, "size")),
		.atime = json_integer_value(json_object_get(d, "atime")),
		.mtime = json_integer_value(json_object_get(d, "mtime")),
		.ctime = json_integer_value(json_object_get(d, "ctime")),
		.parent = n ? (uint64_t)json_integer_value(json_object_get(n, "parent")) : 0,
	};
}

static int es_get(struct idx_backend *b, uint64_t ino, struct idx_hit *h)
{
	json_t *d;
	int rc = doc_of(ES(b), ino, &d);
	if (rc)
		return rc;
	hit_of(d, 0, h);
	return 0;
}

static int cmp_text(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

static int es_fields_of(struct idx_backend *b, uint64_t ino, idx_field_cb cb, void *arg)
{
	json_t *d;
	int rc = doc_of(ES(b), ino, &d);
	if (rc)
		return rc == -ENOENT ? 0 : rc;
	size_t i;
	json_t *row;
	json_array_foreach(json_object_get(d, "xf"), i, row) {
		json_t *num = json_array_get(row, 1), *str = json_array_get(row, 2);
		double v = json_number_value(num);
		if ((rc = cb(arg, json_string_value(json_array_get(row, 0)), json_is_number(num) ? &v : NULL,
			     json_string_value(str))))
			return rc < 0 ? rc : 0;
	}
	/* tags in byte order, as the SQLite backend lists them */
	json_t *tags = json_object_get(d, "tags");
	size_t nt = json_array_size(tags);
	json_t **v = nt ? malloc(nt * sizeof *v) : NULL;
	if (nt && !v)
		return -ENOMEM;
	for (i = 0; i < nt; i++)
		v[i] = json_array_get(tags, i);
	if (nt > 1)
		qsort(v, nt, sizeof *v, cmp_text);
	for (i = 0; i < nt && !rc; i++)
		rc = cb(arg, "tag", NULL, json_string_value(v[i]));
	free(v);
	return rc < 0 ? rc : 0;
}

/* Documents matching q (live ones). */
static int count_matching(struct es *e, json_t *q, uint64_t *n)
{
	json_t *body = json_pack("{s:{s:{s:[o,{s:{s:b}}]}}}", "query", "bool", "filter", q, "term", "deleted", 0);
	char path[512];
	snprintf(path, sizeof path, "/%s/_count", e->target);
	json_t *r = NULL;
	int rc = body ? http_ok(e, "POST", path, body, &r) : -ENOMEM;
	json_decref(body);
	if (!rc)
		*n = (uint64_t)json_integer_value(json_object_get(r, "count"));
	else
		es_log_err(e);
	json_decref(r);
	return rc;
}

/* The xattr fields the mapping knows (names under x), fetched once. */
static json_t *mapped_fields(struct es *e)
{
	if (e->fields)
		return e->fields;
	char path[512];
	snprintf(path, sizeof path, "/%s/_mapping", e->target);
	json_t *r = NULL;
	if (http_ok(e, "GET", path, NULL, &r)) {
		es_log_err(e);
		return NULL;
	}
	const char *k;
	json_t *v;
	json_object_foreach(r, k, v) {
		json_t *x = json_object_get(json_object_get(json_object_get(json_object_get(v, "mappings"), "properties"),
							    "x"),
					    "properties");
		e->fields = json_is_object(x) ? json_incref(x) : json_object();
		break;
	}
	json_decref(r);
	return e->fields;
}

/* A field name, or a field inside it ("a" knows "a.b"), that a live
 * document holds. */
static bool es_has_attr(struct idx_backend *b, const char *name)
{
	struct es *e = ES(b);
	json_t *fields = mapped_fields(e);
	char *exact = field_name(name, 'n');
	if (!fields || !exact) {
		free(exact);
		return false;
	}
	/* "x.NAME#n" -> "NAME" and "NAME~2E" (a dot) as prefixes */
	size_t elen = strlen(exact) - 4;
	char *inner = malloc(elen + 4);
	if (!inner) {
		free(exact);
		return false;
	}
	memcpy(inner, exact + 2, elen);
	memcpy(inner + elen, "~2E", 4);
	json_t *should = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(fields, k, v) {
		size_t kl = strlen(k);
		bool same = kl == elen + 2 && !memcmp(k, inner, elen) && k[elen] == '#';
		bool below = kl > elen + 3 && !memcmp(k, inner, elen + 3);
		if (same || below) {
			char f[4096];
			snprintf(f, sizeof f, "x.%s", k);
			json_array_append_new(should, json_pack("{s:{s:s}}", "exists", "field", f));
		}
	}
	free(exact);
	free(inner);
	if (!json_array_size(should)) {
		json_decref(should);
		return false;
	}
	uint64_t n = 0;
	json_t *q = json_pack("{s:{s:o,s:i}}", "bool", "should", should, "minimum_should_match", 1);
	int rc = q ? count_matching(e, q, &n) : -ENOMEM;
	return rc == 0 && n > 0;
}

static int es_count(struct idx_backend *b, uint64_t *n)
{
	return count_matching(ES(b), json_pack("{s:{}}", "match_all"), n);
}

static int es_sync(struct idx_backend *b)
{
	struct es *e = ES(b);
	char path[512];
	snprintf(path, sizeof path, "/%s/_refresh", e->target);
	int rc = http_ok(e, "POST", path, NULL, NULL);
	if (rc)
		es_log_err(e);
	return rc;
}

/* ---------------------------------------------------------------- subtree renames */

static bool has_prefix(const char *s, size_t len, const char *pre, size_t plen)
{
	return len >= plen && memcmp(s, pre, plen) == 0;
}

/*
 * Rewrites the paths under old_prefix in the documents the cluster holds,
 * before the batch's pending documents (among them the moved directory's
 * own, with its new path) are sent: if this is cut short, the batch is
 * applied again, the directory's indexed path is still the old one, and
 * the rewrite resumes with the documents still under it.
 */
static int es_move_subtree(struct idx_backend *b, const char *old_prefix, size_t old_len, const char *new_prefix,
			   size_t new_len)
{
	struct es *e = ES(b);
	int rc = es_sync(b); /* the documents acknowledged so far */
	json_t *jold = jbytes(old_prefix, old_len);
	json_t *after = NULL;
	struct bulk moved = { 0 }; /* the rewritten documents, sent on their own */
	char path[512];
	snprintf(path, sizeof path, "/%s/_search", e->target);
	while (!rc) {
		json_t *body = json_pack("{s:{s:{s:[{s:{s:O}},{s:{s:b}}]}},s:i,s:[{s:s}],s:b}", "query", "bool", "filter",
					 "prefix", "names.path", jold, "term", "deleted", 0, "size", 1000, "sort", "ino",
					 "asc", "version", 1);
		if (!body) {
			rc = -ENOMEM;
			break;
		}
		if (after)
			json_object_set(body, "search_after", after);
		json_t *r = NULL;
		rc = http_ok(e, "POST", path, body, &r);
		json_decref(body);
		if (rc)
			break;
		json_t *hits = json_object_get(json_object_get(r, "hits"), "hits");
		size_t i, nh = json_array_size(hits);
		json_t *h;
		json_array_foreach(hits, i, h) {
			json_t *src = json_object_get(h, "_source");
			json_t *names = json_object_get(src, "names"), *n;
			size_t k;
			json_array_foreach(names, k, n) {
				size_t len;
				char *p = raw(json_object_get(n, "path"), &len);
				if (!p) {
					rc = -ENOMEM;
					break;
				}
				if (has_prefix(p, len, old_prefix, old_len)) {
					size_t ml = new_len + len - old_len;
					char *m = malloc(ml + 1);
					if (!m) {
						free(p);
						rc = -ENOMEM;
						break;
					}
					memcpy(m, new_prefix, new_len);
					memcpy(m + new_len, p + old_len, len - old_len);
					char *pw = idx_to_utf8(m, ml);
					json_object_set_new(n, "path", jbytes(m, ml));
					json_object_set_new(n, "pw", json_string(pw ? pw : ""));
					free(pw);
					free(m);
				}
				free(p);
			}
			uint64_t ino = (uint64_t)json_integer_value(json_object_get(src, "ino"));
			cache_drop(e, ino);
			if (!rc)
				rc = add_item(e, &moved, ino, (uint64_t)json_integer_value(json_object_get(h, "_version")), src);
			if (rc)
				break;
		}
		if (!rc)
			rc = flush(e, &moved);
		json_decref(after);
		after = nh ? json_incref(json_object_get(json_array_get(hits, nh - 1), "sort")) : NULL;
		json_decref(r);
		if (nh < 1000)
			break;
		if (!rc)
			rc = es_sync(b);
	}
	json_decref(after);
	json_decref(jold);
	free(moved.buf.p);
	free(moved.items);
	if (!rc)
		rc = flush(e, &e->bulk); /* then the batch so far, the moved directory last */
	if (rc)
		es_log_err(e);
	return rc;
}

/* ---------------------------------------------------------------- queries */

static bool name_level(const struct q_node *n)
{
	return n->kind == Q_TERM && (n->f == QF_NAME || n->f == QF_PATH);
}

static bool has_name_level(const struct q_node *n)
{
	if (!n)
		return false;
	if (n->kind == Q_TERM)
		return name_level(n);
	return has_name_level(n->left) || has_name_level(n->right);
}

struct leaves {
	const struct q_node *v[256];
	int n;
	bool overflow;
};

static void collect_leaves(const struct q_node *n, struct leaves *l)
{
	if (!n)
		return;
	if (n->kind != Q_TERM) {
		collect_leaves(n->left, l);
		collect_leaves(n->right, l);
	} else if (!name_level(n)) {
		if (l->n < (int)MFS_ARRAY_LEN(l->v))
			l->v[l->n++] = n;
		else
			l->overflow = true;
	}
}

static int leaf_index(const struct leaves *l, const struct q_node *n)
{
	for (int i = 0; i < l->n; i++)
		if (l->v[i] == n)
			return i;
	return -1;
}

static json_t *cmp_int(const char *field, const struct q_node *n)
{
	static const char *const ops[] = { [QOP_GT] = "gt", [QOP_GE] = "gte", [QOP_LT] = "lt", [QOP_LE] = "lte" };
	if (n->op == QOP_MATCH)
		return json_pack("{s:{s:I}}", "term", field, (json_int_t)n->num);
	if (n->op == QOP_RANGE)
		return json_pack("{s:{s:{s:I,s:I}}}", "range", field, "gte", (json_int_t)n->num, "lte",
				 (json_int_t)n->num2);
	return json_pack("{s:{s:{s:I}}}", "range", field, ops[n->op], (json_int_t)n->num);
}

static json_t *cmp_real(const char *field, const struct q_node *n, double v, double v2)
{
	static const char *const ops[] = { [QOP_GT] = "gt", [QOP_GE] = "gte", [QOP_LT] = "lt", [QOP_LE] = "lte" };
	if (n->op == QOP_MATCH)
		return json_pack("{s:{s:f}}", "term", field, v);
	if (n->op == QOP_RANGE)
		return json_pack("{s:{s:{s:f,s:f}}}", "range", field, "gte", v, "lte", v2);
	return json_pack("{s:{s:{s:f}}}", "range", field, ops[n->op], v);
}

static json_t *any_of(json_t *a, json_t *b)
{
	return json_pack("{s:{s:[o,o],s:i}}", "bool", "should", a, b, "minimum_should_match", 1);
}

/* An xattr-field term: the same rows as attr_cond of the SQLite backend. */
static json_t *attr_query(const struct q_node *n)
{
	char *fn = field_name(n->attr, 'n'), *fs = field_name(n->attr, 's'), *fb = field_name(n->attr, 'b');
	json_t *q = NULL;
	if (fn && fs && fb) {
		if (n->vtype == QV_NUMBER || (n->vtype == QV_BOOL && n->op != QOP_MATCH)) {
			q = any_of(cmp_real(fn, n, n->real, n->real2), cmp_real(fb, n, n->real, n->real2));
		} else if (n->vtype == QV_BOOL) {
			q = json_pack("{s:{s:s}}", "term", fs, n->num ? "true" : "false");
		} else {
			double d;
			q = json_pack("{s:{s:s}}", "term", fs, n->value);
			if (q && q_number_text(n->value, &d))
				q = any_of(q, json_pack("{s:{s:f}}", "term", fn, d));
		}
	}
	free(fn);
	free(fs);
	free(fb);
	return q;
}

/* The files resolve_derived found, in terms queries of at most the
 * number of terms a cluster takes in one (index.max_terms_count). */
#define TERMS_MAX 65536
static json_t *derived_query(const struct q_node *n)
{
	if (!n->ninos)
		return json_pack("{s:{}}", "match_none");
	json_t *any = json_array();
	for (size_t at = 0; any && at < n->ninos; at += TERMS_MAX) {
		json_t *inos = json_array();
		for (size_t i = at; inos && i < n->ninos && i < at + TERMS_MAX; i++)
			json_array_append_new(inos, json_integer((json_int_t)n->inos[i]));
		json_array_append_new(any, json_pack("{s:{s:o}}", "terms", "ino", inos));
	}
	if (json_array_size(any) == 1) {
		json_t *one = json_incref(json_array_get(any, 0));
		json_decref(any);
		return one;
	}
	return json_pack("{s:{s:o,s:i}}", "bool", "should", any, "minimum_should_match", 1);
}

/* A term that concerns the document as a whole. */
static json_t *doc_leaf(const struct q_node *n)
{
	switch (n->f) {
	case QF_TEXT:
		return json_pack("{s:{s:s,s:s,s:[s,s,s]}}", "multi_match", "query", n->value, "type", "phrase", "fields",
				 "names.nw^10", "names.pw^2", "text");
	case QF_TYPE: return json_pack("{s:{s:I}}", "term", "fmt", (json_int_t)n->num);
	case QF_SIZE: return cmp_int("size", n);
	case QF_MTIME: return cmp_int("mtime", n);
	case QF_ATIME: return cmp_int("atime", n);
	case QF_CTIME: return cmp_int("ctime", n);
	case QF_UID: return cmp_int("uid", n);
	case QF_GID: return cmp_int("gid", n);
	case QF_MODE: return cmp_int("perm", n);
	case QF_NLINK: return cmp_int("nlink", n);
	case QF_TAG: return json_pack("{s:{s:s}}", "term", "tags", n->value);
	case QF_GENERATED: return json_pack("{s:{s:s}}", "term", "lin_gen", n->value);
	/* the files were looked up first (resolve_derived) */
	case QF_DERIVED: return derived_query(n);
	case QF_ATTR: return attr_query(n);
	case QF_NAME:
	case QF_PATH: break;
	}
	return NULL;
}

/* path: and --under values as the SQLite backend reads them */
static size_t path_len_trimmed(const char *v)
{
	size_t len = strlen(v);
	while (len > 1 && v[len - 1] == '/')
		len--;
	return len;
}

static json_t *subtree_query(const char *v)
{
	size_t len = path_len_trimmed(v);
	if (len == 1 && v[0] == '/')
		return json_pack("{s:{}}", "match_all");
	json_t *p = jbytes(v, len);
	return p ? json_pack("{s:{s:o}}", "term", "names.path.tree", p) : NULL;
}

/* A name or path term, as "some name of the document could match". */
static json_t *name_superset(const struct q_node *n)
{
	if (n->f == QF_PATH)
		return subtree_query(n->value);
	if (!n->glob)
		return json_pack("{s:{s:s}}", "match_phrase", "names.nw", n->value);
	/* GLOB's * and ? are the wildcard's; from a [class] on, anything */
	size_t len = strlen(n->value);
	char *w = malloc(len * 2 + 2), *q = w;
	if (!w)
		return NULL;
	for (const char *p = n->value; *p; p++) {
		if (*p == '[') {
			*q++ = '*';
			break;
		}
		if (*p == '\\')
			*q++ = '\\';
		*q++ = *p;
	}
	json_t *pat = jbytes(w, (size_t)(q - w));
	free(w);
	return pat ? json_pack("{s:{s:{s:o}}}", "wildcard", "names.name", "value", pat) : NULL;
}

/* The documents that could match under some name. */
static json_t *superset(const struct q_node *n)
{
	switch (n->kind) {
	case Q_AND:
		return json_pack("{s:{s:[o,o]}}", "bool", "filter", superset(n->left), superset(n->right));
	case Q_OR:
		return any_of(superset(n->left), superset(n->right));
	case Q_NOT:
		if (has_name_level(n->left))
			return json_pack("{s:{}}", "match_all");
		return json_pack("{s:{s:[o]}}", "bool", "must_not", superset(n->left));
	case Q_TERM:
		break;
	}
	return name_level(n) ? name_superset(n) : doc_leaf(n);
}

/* Free words that rank: not under a NOT. */
static void ranking_words(const struct q_node *n, bool under_not, const struct q_node **v, int *k, bool *any)
{
	if (!n)
		return;
	if (n->kind == Q_NOT) {
		ranking_words(n->left, true, v, k, any);
		return;
	}
	if (n->kind != Q_TERM) {
		ranking_words(n->left, under_not, v, k, any);
		ranking_words(n->right, under_not, v, k, any);
		return;
	}
	if (n->f == QF_TEXT && !under_not) {
		*any = true;
		v[(*k)++] = n;
	}
}

struct pair {
	json_t *doc;
	size_t name; /* index in names */
	double score;
	uint64_t ino;
	char *nm, *path;
	size_t nml, pl;
};

struct qrun {
	struct es *e;
	const struct q_node *q;
	const struct idx_query_opts *o;
	enum idx_sort sort;
	bool reverse, ranked;
	struct leaves lv;
	bool matched[256];
	struct pair *pend;
	size_t npend, cappend;
	idx_hit_cb cb;
	void *arg;
	bool stop;
	int rc;
};

static int memcmp_len(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

static int cmp_num(double a, double b)
{
	return (a > b) - (a < b);
}

/*
 * The final order of hits (that of the SQLite backend, ties in the order it
 * breaks them). lead: only the keys the cluster sorts documents by, where
 * a document's key is that of its first name in this order.
 */
static int pair_cmp(const struct qrun *r, const struct pair *a, const struct pair *b, bool lead)
{
	int c = 0;
	int64_t sa, sb;
	switch (r->sort) {
	case IDX_SORT_SCORE:
		if (r->ranked && (c = cmp_num(b->score, a->score)))
			break;
		if ((c = (a->ino > b->ino) - (a->ino < b->ino)) || lead)
			break;
		c = memcmp_len(a->path, a->pl, b->path, b->pl);
		break;
	case IDX_SORT_NAME:
		if ((c = memcmp_len(a->nm, a->nml, b->nm, b->nml)) || lead)
			break;
		c = memcmp_len(a->path, a->pl, b->path, b->pl);
		break;
	case IDX_SORT_PATH: c = memcmp_len(a->path, a->pl, b->path, b->pl); break;
	case IDX_SORT_SIZE:
	case IDX_SORT_MTIME: {
		const char *f = r->sort == IDX_SORT_SIZE ? "size" : "mtime";
		sa = json_integer_value(json_object_get(a->doc, f));
		sb = json_integer_value(json_object_get(b->doc, f));
		if ((c = (sb > sa) - (sb < sa)))
			break;
		c = memcmp_len(a->path, a->pl, b->path, b->pl);
		break;
	}
	}
	return r->reverse ? -c : c;
}

static void pair_free(struct pair *p)
{
	json_decref(p->doc);
	free(p->nm);
	free(p->path);
}

static int emit(struct qrun *r, struct pair *p)
{
	struct idx_hit h;
	hit_of(p->doc, p->name, &h);
	h.path = p->path;
	h.path_len = p->pl;
	h.score = p->score;
	int rc = r->cb(r->arg, &h);
	if (rc) {
		r->stop = true;
		if (rc < 0)
			r->rc = rc;
	}
	return rc;
}

/* Emits the pending hits that come before key (all of them: key NULL). */
static void emit_before(struct qrun *r, const struct pair *key)
{
	size_t k = 0;
	while (k < r->npend && !r->stop && (!key || pair_cmp(r, &r->pend[k], key, true) < 0))
		emit(r, &r->pend[k++]);
	if (!k)
		return;
	for (size_t i = 0; i < k; i++)
		pair_free(&r->pend[i]);
	memmove(r->pend, r->pend + k, (r->npend - k) * sizeof *r->pend);
	r->npend -= k;
}

static int add_pending(struct qrun *r, struct pair *p)
{
	if (mfs_array_reserve(&r->pend, &r->cappend, r->npend, sizeof *r->pend))
		return -ENOMEM;
	size_t i = r->npend;
	while (i > 0 && pair_cmp(r, &r->pend[i - 1], p, false) > 0)
		i--;
	memmove(r->pend + i + 1, r->pend + i, (r->npend - i) * sizeof *r->pend);
	r->pend[i] = *p;
	r->npend++;
	return 0;
}

/* name words, by the tokenizer of the SQLite backend */
static bool name_has_words(struct es *e, const char *name, size_t len, const char *words)
{
	if (!e->mem) {
		if (sqlite3_open_v2(":memory:", &e->mem, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
		    sqlite3_exec(e->mem, "CREATE VIRTUAL TABLE w USING fts5(t, tokenize = 'unicode61 remove_diacritics 2')",
				 NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(e->mem, "INSERT OR REPLACE INTO w(rowid, t) VALUES(1, ?)", -1, &e->w_put, NULL) ||
		    sqlite3_prepare_v2(e->mem, "SELECT 1 FROM w WHERE w MATCH ?", -1, &e->w_match, NULL))
			return false;
	}
	char *u = idx_to_utf8(name, len), *q = idx_fts_quote(words);
	bool hit = false;
	if (u && q) {
		if (!e->w_text || strcmp(e->w_text, u)) {
			sqlite3_exec(e->mem, "DELETE FROM w", NULL, NULL, NULL);
			sqlite3_reset(e->w_put);
			sqlite3_bind_text(e->w_put, 1, u, -1, SQLITE_STATIC);
			sqlite3_step(e->w_put);
			sqlite3_reset(e->w_put);
			free(e->w_text);
			e->w_text = strdup(u);
		}
		sqlite3_reset(e->w_match);
		sqlite3_bind_text(e->w_match, 1, q, -1, SQLITE_STATIC);
		hit = sqlite3_step(e->w_match) == SQLITE_ROW;
		sqlite3_reset(e->w_match);
	}
	free(u);
	free(q);
	return hit;
}

static bool in_subtree(const char *path, size_t pl, const char *v)
{
	size_t len = path_len_trimmed(v);
	if (len == 1 && v[0] == '/')
		return pl >= 1 && path[0] == '/';
	return (pl == len && !memcmp(path, v, len)) || (pl > len && !memcmp(path, v, len) && path[len] == '/');
}

/* The query for one name of a document whose other terms are known. */
static bool eval(struct qrun *r, const struct q_node *n, const struct pair *p)
{
	switch (n->kind) {
	case Q_AND: return eval(r, n->left, p) && eval(r, n->right, p);
	case Q_OR: return eval(r, n->left, p) || eval(r, n->right, p);
	case Q_NOT: return !eval(r, n->left, p);
	case Q_TERM: break;
	}
	if (n->f == QF_PATH)
		return in_subtree(p->path, p->pl, n->value);
	if (n->f == QF_NAME)
		return n->glob ? sqlite3_strglob(n->value, p->nm) == 0 : name_has_words(r->e, p->nm, p->nml, n->value);
	int i = leaf_index(&r->lv, n);
	return i >= 0 && r->matched[i];
}

static int take_hit(struct qrun *r, json_t *hit)
{
	json_t *d = json_object_get(hit, "_source");
	json_t *names = json_object_get(d, "names");
	if (!d || !json_is_array(names))
		return 0;
	memset(r->matched, 0, sizeof r->matched);
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(hit, "matched_queries"), i, m) {
		const char *s = json_string_value(m);
		int k;
		if (s && s[0] == 't' && (k = atoi(s + 1)) >= 0 && k < r->lv.n)
			r->matched[k] = true;
	}
	/* every name of the document, then its key: its first name in the order */
	size_t nn = json_array_size(names), key = 0;
	struct pair *ps = calloc(nn ? nn : 1, sizeof *ps);
	bool *ok = calloc(nn ? nn : 1, sizeof *ok);
	int rc = ps && ok ? 0 : -ENOMEM;
	for (i = 0; i < nn && !rc; i++) {
		json_t *n = json_array_get(names, i);
		struct pair *p = &ps[i];
		*p = (struct pair){ .doc = d, .name = i,
				    .score = json_number_value(json_object_get(hit, "_score")),
				    .ino = (uint64_t)json_integer_value(json_object_get(d, "ino")) };
		p->nm = raw(json_object_get(n, "name"), &p->nml);
		p->path = raw(json_object_get(n, "path"), &p->pl);
		if (!p->nm || !p->path) {
			rc = -ENOMEM;
			break;
		}
		if (pair_cmp(r, p, &ps[key], false) < 0)
			key = i;
		ok[i] = true;
		if (r->o && r->o->under && r->o->under[0]) {
			ok[i] = false;
			for (const char *const *u = r->o->under; *u && !ok[i]; u++)
				ok[i] = in_subtree(p->path, p->pl, *u);
		}
		ok[i] = ok[i] && eval(r, r->q, p);
	}
	/* the matching names wait for their turn; the key stays valid while
	 * the earlier hits go out, as nothing comes before itself */
	struct pair k0 = rc ? (struct pair){ 0 } : ps[key];
	for (i = 0; i < nn && !rc; i++) {
		if (!ok[i])
			continue;
		struct pair p = ps[i];
		p.doc = json_incref(d);
		if ((rc = add_pending(r, &p)))
			json_decref(d);
		else
			ps[i].nm = ps[i].path = NULL; /* pending holds them */
	}
	if (!rc && nn)
		emit_before(r, &k0);
	for (i = 0; ps && i < nn; i++) {
		free(ps[i].nm);
		free(ps[i].path);
	}
	free(ps);
	free(ok);
	/* the document is at hand for --json and permission checks */
	char k[24];
	snprintf(k, sizeof k, "%" PRIu64, (uint64_t)json_integer_value(json_object_get(d, "ino")));
	if (json_object_size(r->e->cache) >= CACHE_MAX)
		json_object_clear(r->e->cache);
	json_object_set(r->e->cache, k, d);
	return rc;
}

static json_t *sort_spec(const struct qrun *r)
{
	const char *up = r->reverse ? "desc" : "asc", *down = r->reverse ? "asc" : "desc";
	const char *mode = r->reverse ? "max" : "min";
	switch (r->sort) {
	case IDX_SORT_SCORE:
		if (r->ranked)
			return json_pack("[{s:{s:s}},{s:{s:s}}]", "_score", "order", down, "ino", "order", up);
		return json_pack("[{s:{s:s}}]", "ino", "order", up);
	case IDX_SORT_NAME:
		return json_pack("[{s:{s:s,s:s}},{s:{s:s}}]", "names.name", "order", up, "mode", mode, "ino", "order", up);
	case IDX_SORT_PATH:
		return json_pack("[{s:{s:s,s:s}},{s:{s:s}}]", "names.path", "order", up, "mode", mode, "ino", "order", up);
	case IDX_SORT_SIZE:
	case IDX_SORT_MTIME:
		return json_pack("[{s:{s:s}},{s:{s:s,s:s}},{s:{s:s}}]", r->sort == IDX_SORT_SIZE ? "size" : "mtime",
				 "order", down, "names.path", "order", up, "mode", mode, "ino", "order", up);
	}
	return NULL;
}

/* derived-from:PATH names a file by path: its inode (none when no live
 * document has that path, which matches nothing), and the files derived
 * from it, which the cluster holds no graph to find: the query's
 * descendants callback reads them from the volume's records. */
static int resolve_derived(struct es *e, const struct q_node *cn, const struct idx_query_opts *o)
{
	struct q_node *n = (struct q_node *)cn;
	if (!n)
		return 0;
	if (n->kind != Q_TERM) {
		int rc = resolve_derived(e, n->left, o);
		return rc ? rc : resolve_derived(e, n->right, o);
	}
	if (n->f != QF_DERIVED)
		return 0;
	if (!o || !o->descendants)
		return -EOPNOTSUPP;
	char path[512];
	snprintf(path, sizeof path, "/%s/_search", e->target);
	json_t *body = json_pack("{s:{s:{s:[{s:{s:o}},{s:{s:b}}]}},s:i,s:[s]}", "query", "bool", "filter", "term",
				 "names.path", jbytes(n->value, strlen(n->value)), "term", "deleted", 0, "size", 1,
				 "_source", "ino");
	if (!body)
		return -ENOMEM;
	json_t *r = NULL;
	int rc = http_ok(e, "POST", path, body, &r);
	json_decref(body);
	if (rc)
		return rc;
	json_t *h = json_array_get(json_object_get(json_object_get(r, "hits"), "hits"), 0);
	n->num = h ? (int64_t)json_integer_value(json_object_get(json_object_get(h, "_source"), "ino")) : 0;
	json_decref(r);
	free(n->inos);
	n->inos = NULL;
	n->ninos = 0;
	if (!n->num)
		return 0;
	struct u64_vec found = { NULL, 0, 0 };
	rc = o->descendants(o->descendants_arg, (uint64_t)n->num, &found);
	if (rc) {
		free(found.v);
		return rc;
	}
	n->inos = found.v;
	n->ninos = found.n;
	return 0;
}

static int es_query(struct idx_backend *b, const struct q_node *q, const struct idx_query_opts *o, idx_hit_cb cb,
		    void *arg)
{
	struct es *e = ES(b);
	int rrc = resolve_derived(e, q, o);
	if (rrc)
		return rrc;
	struct qrun r = { .e = e, .q = q, .o = o, .sort = o ? o->sort : IDX_SORT_SCORE, .reverse = o && o->reverse,
			  .cb = cb, .arg = arg };
	collect_leaves(q, &r.lv);
	if (r.lv.overflow)
		return -E2BIG;
	const struct q_node *words[256];
	int nw = 0;
	ranking_words(q, false, words, &nw, &r.ranked);
	if (r.sort != IDX_SORT_SCORE)
		r.ranked = false;

	/* filter: what could match, live documents, the subtrees asked for;
	 * should: each document term by name, scoring only the ranking words */
	json_t *filter = json_array(), *should = json_array();
	json_array_append_new(filter, superset(q));
	json_array_append_new(filter, json_pack("{s:{s:b}}", "term", "deleted", 0));
	if (o && o->under && o->under[0]) {
		json_t *any = json_array();
		for (const char *const *u = o->under; *u; u++)
			json_array_append_new(any, subtree_query(*u));
		json_array_append_new(filter, json_pack("{s:{s:o,s:i}}", "bool", "should", any, "minimum_should_match", 1));
	}
	for (int i = 0; i < r.lv.n; i++) {
		char name[16];
		snprintf(name, sizeof name, "t%d", i);
		bool scores = false;
		for (int k = 0; k < nw; k++)
			scores |= words[k] == r.lv.v[i];
		json_t *leaf = doc_leaf(r.lv.v[i]);
		if (scores && leaf) {
			json_object_set_new(json_object_get(leaf, "multi_match"), "_name", json_string(name));
			json_array_append_new(should, leaf);
		} else {
			json_array_append_new(should, json_pack("{s:{s:o,s:f,s:s}}", "constant_score", "filter", leaf,
								"boost", 0.0, "_name", name));
		}
	}
	json_t *query = json_pack("{s:{s:o,s:o}}", "bool", "filter", filter, "should", should);
	json_t *sort = sort_spec(&r);
	if (!query || !sort) {
		json_decref(query);
		json_decref(sort);
		return -ENOMEM;
	}
	char path[512];
	snprintf(path, sizeof path, "/%s/_search", e->target);
	json_t *after = NULL;
	int rc = 0;
	while (!rc && !r.stop) {
		json_t *body = json_pack("{s:O,s:O,s:i,s:b}", "query", query, "sort", sort, "size", PAGE,
					 "track_total_hits", 0);
		if (!body) {
			rc = -ENOMEM;
			break;
		}
		if (after)
			json_object_set(body, "search_after", after);
		json_t *resp = NULL;
		rc = http_ok(e, "POST", path, body, &resp);
		json_decref(body);
		if (rc) {
			es_log_err(e);
			break;
		}
		json_t *hits = json_object_get(json_object_get(resp, "hits"), "hits"), *h;
		size_t i, nh = json_array_size(hits);
		json_array_foreach(hits, i, h) {
			if ((rc = take_hit(&r, h)) || r.stop)
				break;
		}
		json_decref(after);
		after = nh ? json_incref(json_object_get(json_array_get(hits, nh - 1), "sort")) : NULL;
		json_decref(resp);
		if (nh < PAGE)
			break;
	}
	if (!rc && !r.stop)
		emit_before(&r, NULL);
	for (size_t i = 0; i < r.npend; i++)
		pair_free(&r.pend[i]);
	free(r.pend);
	json_decref(after);
	json_decref(query);
	json_decref(sort);
	return rc ? rc : r.rc;
}

/* ---------------------------------------------------------------- open, install, close */

static int es_install(struct idx_backend *b)
{
	struct es *e = ES(b);
	if (!e->created)
		return 0;
	int rc = es_sync(b);
	json_t *actions = json_array();
	if (e->old)
		json_array_append_new(actions,
				      json_pack("{s:{s:s,s:s}}", "remove", "index", e->old, "alias", e->c.index));
	json_array_append_new(actions, json_pack("{s:{s:s,s:s}}", "add", "index", e->target, "alias", e->c.index));
	json_t *body = json_pack("{s:o}", "actions", actions);
	if (!rc)
		rc = body ? http_ok(e, "POST", "/_aliases", body, NULL) : -ENOMEM;
	json_decref(body);
	if (rc) {
		es_log_err(e);
		return rc;
	}
	if (e->old) {
		char path[512];
		snprintf(path, sizeof path, "/%s", e->old);
		if (http_ok(e, "DELETE", path, NULL, NULL))
			log_warn("the old index %s was not deleted: %s", e->old, e->err);
	}
	/* from now on reads and writes go through the alias */
	free(e->target);
	e->target = strdup(e->c.index);
	e->created = false;
	return e->target ? 0 : -ENOMEM;
}

static void es_close(struct idx_backend *b)
{
	struct es *e = ES(b);
	if (!e)
		return;
	if (e->curl)
		curl_easy_cleanup(e->curl);
	curl_slist_free_all(e->hdr_json);
	curl_slist_free_all(e->hdr_ndjson);
	sqlite3_finalize(e->w_put);
	sqlite3_finalize(e->w_match);
	sqlite3_close(e->mem);
	free(e->w_text);
	json_decref(e->cache);
	json_decref(e->fields);
	free(e->bulk.buf.p);
	free(e->bulk.items);
	free(e->target);
	free(e->old);
	conf_free(&e->c);
	free(e);
}

static const struct idx_backend_ops es_ops = {
	.name = "elasticsearch",
	.begin = es_begin,
	.commit = es_commit,
	.rollback = es_rollback,
	.put = es_put,
	.del = es_del,
	.move_subtree = es_move_subtree,
	.paths_of = es_paths_of,
	.cursor = es_cursor,
	.get_volume = es_get_volume,
	.set_volume = es_set_volume,
	.has_attr = es_has_attr,
	.query = es_query,
	.get = es_get,
	.fields_of = es_fields_of,
	.count = es_count,
	.sync = es_sync,
	.install = es_install,
	.close = es_close,
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static struct curl_slist *headers(struct es *e, const char *ctype)
{
	struct curl_slist *l = curl_slist_append(NULL, ctype);
	if (l && e->c.api_key) {
		char *h = malloc(strlen(e->c.api_key) + 32);
		if (h) {
			sprintf(h, "Authorization: ApiKey %s", e->c.api_key);
			l = curl_slist_append(l, h);
			free(h);
		}
	}
	/* no "Expect: 100-continue" round trip before large bodies */
	return l ? curl_slist_append(l, "Expect:") : NULL;
}

int idx_es_open(const char *conf, int flags, struct idx_backend **out, char *err, size_t errlen)
{
	pthread_once(&curl_once, curl_init);
	struct es *e = calloc(1, sizeof *e);
	if (!e)
		return -ENOMEM;
	e->base.ops = &es_ops;
	int rc = conf_load(conf, &e->c, err, errlen);
	if (rc) {
		free(e);
		return rc;
	}
	e->curl = curl_easy_init();
	e->cache = json_object();
	e->hdr_json = headers(e, "Content-Type: application/json");
	e->hdr_ndjson = headers(e, "Content-Type: application/x-ndjson");
	if (!e->curl || !e->cache || !e->hdr_json || !e->hdr_ndjson) {
		es_close(&e->base);
		return -ENOMEM;
	}
	char *cur = NULL;
	rc = alias_target(e, &cur);
	if (flags & IDX_OPEN_CREATE) {
		/* a new concrete index; install() points the alias at it */
		if (rc && rc != -ENOENT)
			goto fail;
		e->old = cur;
		char name[300];
		snprintf(name, sizeof name, "%s-%" PRIx64, e->c.index, (uint64_t)mfs_now_ns());
		char path[320];
		snprintf(path, sizeof path, "/%s", name);
		json_t *m = json_loads(MAPPING, 0, NULL);
		rc = m ? http_ok(e, "PUT", path, m, NULL) : -ENOMEM;
		json_decref(m);
		if (rc)
			goto fail;
		e->target = strdup(name);
		e->created = true;
	} else {
		if (rc)
			goto fail;
		free(cur);
		e->target = strdup(e->c.index);
	}
	if (!e->target) {
		es_close(&e->base);
		return -ENOMEM;
	}
	*out = &e->base;
	return 0;
fail:
	if (rc == -ENOENT)
		snprintf(err, errlen, "%s: no index %s in the cluster yet", conf, e->c.index);
	else
		snprintf(err, errlen, "%s: %s", conf, e->err[0] ? e->err : strerror(-rc));
	es_close(&e->base);
	return rc == -ENOENT ? -ENOENT : rc == -EACCES ? -EACCES : -EIO;
}
