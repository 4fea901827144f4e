/* SPDX-License-Identifier: Apache-2.0 */
/* metafs changelog: prints records from a read-only view of the volume, so
 * it runs beside the mounted daemon. */
#include "tools.h"
#include "metadata.h"
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Bytes as a JSON string when they are UTF-8, else as base64 under key_base64. */
static void set_bytes(json_t *o, const char *key, const void *data, size_t len)
{
	json_t *s = json_stringn(data, len);
	if (s) {
		json_object_set_new(o, key, s);
		return;
	}
	char *b64 = malloc(4 * ((len + 2) / 3) + 1);
	if (!b64)
		return;
	EVP_EncodeBlock((unsigned char *)b64, data, (int)len);
	char k[64];
	snprintf(k, sizeof k, "%s_base64", key);
	json_object_set_new(o, k, json_string(b64));
	free(b64);
}

json_t *argv_json(const char *argv, size_t len)
{
	json_t *a = json_array();
	const char *p = argv, *end = argv ? argv + len : NULL;
	while (a && p && p < end) {
		size_t n = strnlen(p, (size_t)(end - p));
		json_t *w = json_stringn(p, n);
		json_array_append_new(a, w ? w : json_string("?"));
		p += n + 1;
	}
	return a;
}

static json_t *rec_json(const struct cl_rec *r)
{
	char ts[64];
	mfs_format_time(r->time_ns, ts, sizeof ts);
	json_t *o = json_object();
	json_object_set_new(o, "seq", json_integer((json_int_t)r->seq));
	json_object_set_new(o, "time", json_string(ts));
	json_object_set_new(o, "op", json_string(cl_op_name(r->op)));
	json_object_set_new(o, "ino", json_integer((json_int_t)r->ino));
	json_object_set_new(o, "version", json_integer((json_int_t)r->version));
	json_object_set_new(o, "type", json_string(type_name(r->mode)));
	json_object_set_new(o, "uid", json_integer(r->uid));
	json_object_set_new(o, "gid", json_integer(r->gid));
	json_object_set_new(o, "pid", json_integer(r->pid));
	switch (r->op) {
	case CL_CREATE: case CL_MKDIR: case CL_MKNOD: case CL_SYMLINK:
	case CL_LINK: case CL_UNLINK: case CL_RMDIR: case CL_RENAME:
		json_object_set_new(o, "parent", json_integer((json_int_t)r->parent));
		set_bytes(o, "name", r->name, r->name_len);
		break;
	default:
		break;
	}
	switch (r->op) {
	case CL_CREATE: case CL_MKDIR: case CL_MKNOD:
		json_object_set_new(o, "mode", json_integer(r->mode & 07777));
		break;
	case CL_SYMLINK:
		set_bytes(o, "target", r->value, r->value_len);
		break;
	case CL_LINK: case CL_UNLINK: case CL_RMDIR:
		json_object_set_new(o, "nlink", json_integer(r->nlink));
		break;
	case CL_RENAME:
		json_object_set_new(o, "new_parent", json_integer((json_int_t)r->new_parent));
		set_bytes(o, "new_name", r->new_name, r->new_name_len);
		if (r->replaced)
			json_object_set_new(o, "replaced", json_integer((json_int_t)r->replaced));
		if (r->fields & 1)
			json_object_set_new(o, "exchange", json_true());
		break;
	case CL_SETATTR: {
		static const struct { uint32_t bit; const char *name; } f[] = {
			{ MFS_SET_MODE, "mode" }, { MFS_SET_UID, "uid" }, { MFS_SET_GID, "gid" },
			{ MFS_SET_SIZE, "size" }, { MFS_SET_ATIME, "atime" }, { MFS_SET_MTIME, "mtime" },
			{ MFS_SET_CTIME, "ctime" },
		};
		json_t *a = json_array();
		for (size_t i = 0; i < MFS_ARRAY_LEN(f); i++)
			if (r->fields & f[i].bit)
				json_array_append_new(a, json_string(f[i].name));
		json_object_set_new(o, "fields", a);
		json_object_set_new(o, "size", json_integer((json_int_t)r->size));
		json_object_set_new(o, "mode", json_integer(r->mode & 07777));
		break;
	}
	case CL_WRITE:
		json_object_set_new(o, "size", json_integer((json_int_t)r->size));
		if (r->fversion) {
			/* the close that made a version: by this process */
			json_object_set_new(o, "proc", json_integer((json_int_t)r->proc));
			json_object_set_new(o, "file_version", json_integer((json_int_t)r->fversion));
		}
		break;
	case CL_SETXATTR:
		set_bytes(o, "xattr", r->xname, r->xname_len);
		set_bytes(o, "value", r->value, r->value_len);
		break;
	case CL_REMOVEXATTR:
		set_bytes(o, "xattr", r->xname, r->xname_len);
		break;
	case CL_PROCESS:
		json_object_set_new(o, "proc", json_integer((json_int_t)r->proc));
		set_bytes(o, "exe", r->name, r->name_len);
		json_object_set_new(o, "argv", argv_json(r->value, r->value_len));
		break;
	case CL_USED: case CL_GENERATED:
		/* none: a version first seen, with no writer known */
		if (r->proc)
			json_object_set_new(o, "proc", json_integer((json_int_t)r->proc));
		json_object_set_new(o, "file_version", json_integer((json_int_t)r->fversion));
		json_object_set_new(o, "size", json_integer((json_int_t)r->size));
		break;
	default:
		break;
	}
	if (r->op == CL_PROCESS)
		json_object_del(o, "type");
	return o;
}

static volatile sig_atomic_t stop_following;

static void on_stop(int sig)
{
	stop_following = 1;
}

struct print_state {
	bool json;
	uint64_t next;
};

static int print_rec(void *arg, const struct cl_rec *r)
{
	struct print_state *p = arg;
	json_t *o = rec_json(r);
	if (p->json) {
		char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (s)
			puts(s);
		free(s);
	} else {
		/* one line a record: seq, time, op, then the fields as key=value */
		printf("%llu %s %s", (unsigned long long)r->seq, json_string_value(json_object_get(o, "time")),
		       cl_op_name(r->op));
		const char *key;
		json_t *val;
		json_object_foreach(o, key, val) {
			if (!strcmp(key, "seq") || !strcmp(key, "time") || !strcmp(key, "op"))
				continue;
			char *s = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
			printf(" %s=%s", key, s ? s : "?");
			free(s);
		}
		putchar('\n');
	}
	json_decref(o);
	p->next = r->seq + 1;
	return ferror(stdout) ? -EPIPE : 0;
}

int cmd_changelog(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "from", required_argument, NULL, 'F' },
		{ "follow", no_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct print_state p = { false, 1 };
	bool follow = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'F': {
			char *end;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (*end || !*optarg) {
				die_msg("--from %s: not a sequence number", optarg);
				return 2;
			}
			p.next = v ? v : 1;
			break;
		}
		case 'f':
			follow = true;
			break;
		case 'j':
			p.json = true;
			break;
		case 'h':
			printf("usage: metafs changelog VOLUME|PATH [--from SEQ] [--follow] [--json]\n"
			       "  Prints every change in commit order, one record a line.\n"
			       "  --from SEQ  start at sequence number SEQ (default 1)\n"
			       "  --follow    keep printing new records as they are committed\n"
			       "  --json      one JSON object a line (stable form for scripts)\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1) {
		die_msg("usage: metafs changelog VOLUME|PATH [--from SEQ] [--follow] [--json]");
		return 2;
	}
	char vol[PATH_MAX];
	struct mfs_volume *v;
	if (open_volume_ro(argv[optind], vol, sizeof vol, &v))
		return 1;
	/* a closed pipe or ^C ends the command cleanly, so the read-only
	 * view's temporary directory is removed */
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	int rc;
	for (;;) {
		rc = v->store->ops->changelog_read(v->store, p.next, print_rec, &p);
		if (fflush(stdout) != 0 && !rc)
			rc = -EPIPE;
		if (rc || !follow || stop_following)
			break;
		mfs_sleep_us(100000);
		rc = v->store->ops->catch_up(v->store);
		if (rc)
			break;
	}
	mfs_close(v);
	if (rc == -EPIPE)
		return 0;
	if (rc) {
		die_msg("%s: cannot read the changelog: %s", vol, strerror(-rc));
		return 1;
	}
	return 0;
}
