/* SPDX-License-Identifier: Apache-2.0 */
#include "tools.h"
#include "metadata.h"
#include "indexer.h"
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int emit_prop(void *arg, const char *key, const char *val)
{
	json_object_set_new(arg, key, json_string(val));
	return 0;
}

/* The search index: where, how far it has applied the changelog (lag, in
 * records), and for a cluster the documents it refused and parked. */
static void index_stats(const char *vol, uint64_t last, json_t *o)
{
	char loc[PATH_MAX + 8], err[1024] = "";
	indexer_default_path(vol, loc, sizeof loc);
	bool es = idx_is_es(loc);
	json_object_set_new(o, "index_backend", json_string(es ? "elasticsearch" : "sqlite"));
	json_object_set_new(o, "index_location", json_string(idx_locator_file(loc)));
	struct idx_backend *be;
	uint64_t cursor = 0, docs = 0;
	int rc = idx_open(loc, IDX_OPEN_READONLY, &be, err, sizeof err);
	if (!rc) {
		rc = be->ops->cursor(be, &cursor);
		if (!rc)
			rc = be->ops->count(be, &docs);
		be->ops->close(be);
	}
	if (rc) {
		json_object_set_new(o, "index_error", json_string(err[0] ? err : strerror(-rc)));
		return;
	}
	json_object_set_new(o, "index_cursor", json_integer((json_int_t)cursor));
	json_object_set_new(o, "index_lag", json_integer((json_int_t)(last > cursor ? last - cursor : 0)));
	json_object_set_new(o, "index_documents", json_integer((json_int_t)docs));
	if (es) {
		char parked[PATH_MAX + 32];
		snprintf(parked, sizeof parked, "%s/search-parked.jsonl", vol);
		FILE *f = fopen(parked, "r");
		long n = 0;
		int c;
		while (f && (c = getc(f)) != EOF)
			n += c == '\n';
		if (f)
			fclose(f);
		json_object_set_new(o, "index_parked", json_integer(n));
	}
}

int cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool as_json = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'j')
			as_json = true;
		else if (c == 'h') {
			printf("usage: metafs stats VOLUME|PATH [--json]\n"
			       "  Prints the volume's settings, changelog bounds and store figures.\n");
			return 0;
		} else
			return 2;
	}
	if (optind != argc - 1) {
		die_msg("usage: metafs stats VOLUME|PATH [--json]");
		return 2;
	}
	char vol[PATH_MAX];
	struct mfs_volume *v;
	if (open_volume_ro(argv[optind], vol, sizeof vol, &v))
		return 1;
	char uuid[40], created[64];
	const unsigned char *u = v->sb.uuid;
	snprintf(uuid, sizeof uuid, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	mfs_format_time(v->sb.created_ns, created, sizeof created);
	uint64_t first = 0, last = 0;
	int rc = v->store->ops->changelog_bounds(v->store, &first, &last);
	json_t *o = json_object();
	json_object_set_new(o, "volume", json_string(vol));
	json_object_set_new(o, "uuid", json_string(uuid));
	json_object_set_new(o, "format_version", json_integer(v->sb.format_version));
	json_object_set_new(o, "created", json_string(created));
	json_object_set_new(o, "inline_threshold", json_integer(v->sb.inline_threshold));
	json_object_set_new(o, "chunk_size", json_integer(v->sb.chunk_size));
	json_object_set_new(o, "changelog_first", json_integer((json_int_t)first));
	json_object_set_new(o, "changelog_last", json_integer((json_int_t)last));
	json_t *store = json_object();
	if (!rc)
		rc = v->store->ops->describe(v->store, emit_prop, store);
	json_object_set_new(o, "store", store);
	if (!rc)
		index_stats(vol, last, o);
	mfs_close(v);
	if (rc) {
		json_decref(o);
		die_msg("%s: cannot read the volume: %s", vol, strerror(-rc));
		return 1;
	}
	if (as_json) {
		char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		puts(s ? s : "{}");
		free(s);
	} else {
		const char *key;
		json_t *val;
		json_object_foreach(o, key, val) {
			if (json_is_object(val)) {
				const char *k2;
				json_t *v2;
				json_object_foreach(val, k2, v2)
					printf("%-44s %s\n", k2, json_string_value(v2));
				continue;
			}
			char *s = json_is_string(val) ? strdup(json_string_value(val)) : json_dumps(val, JSON_ENCODE_ANY);
			printf("%-44s %s\n", key, s ? s : "");
			free(s);
		}
	}
	json_decref(o);
	return 0;
}
