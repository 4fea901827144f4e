/* SPDX-License-Identifier: Apache-2.0 */
/* Changelog record encoding: a fixed little-endian header, then the strings. */
#include "metadata.h"
#include "common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* format 2 added the provenance fields (proc in the spare eighth u64, and
 * fversion after the u32s); format 3 is format 2 with the origin after
 * fversion, written only for a record that has one (a cluster volume's
 * mount); records of format 1 still decode */
#define CL_FORMAT 2
#define CL_FORMAT_ORIGIN 3
#define CL_HEADER1_LEN (2 + 8 * 8 + 4 * 10)
#define CL_HEADER_LEN (CL_HEADER1_LEN + 8)
#define CL_HEADER3_LEN (CL_HEADER_LEN + 8)

static const char *const op_names[CL_OP_MAX] = {
	[CL_CREATE] = "create",   [CL_MKDIR] = "mkdir",     [CL_MKNOD] = "mknod",
	[CL_SYMLINK] = "symlink", [CL_LINK] = "link",       [CL_UNLINK] = "unlink",
	[CL_RMDIR] = "rmdir",     [CL_RENAME] = "rename",   [CL_SETATTR] = "setattr",
	[CL_WRITE] = "write",     [CL_SETXATTR] = "setxattr", [CL_REMOVEXATTR] = "removexattr",
	[CL_PROCESS] = "process", [CL_USED] = "used",       [CL_GENERATED] = "generated",
};

const char *cl_op_name(uint32_t op)
{
	if (op == 0 || op >= CL_OP_MAX)
		return "unknown";
	return op_names[op];
}

int cl_encode(const struct cl_rec *r, unsigned char **out, size_t *out_len)
{
	size_t len = (r->origin ? CL_HEADER3_LEN : CL_HEADER_LEN) + (size_t)r->name_len + r->new_name_len +
		     r->xname_len + r->value_len;
	unsigned char *p = malloc(len);
	if (!p)
		return -ENOMEM;
	unsigned char *q = p;
	*q++ = r->origin ? CL_FORMAT_ORIGIN : CL_FORMAT;
	*q++ = (unsigned char)r->op;
	uint64_t u64s[] = { (uint64_t)r->time_ns, r->ino, r->version, r->parent,
			    r->new_parent, r->replaced, r->size, r->proc };
	for (size_t i = 0; i < MFS_ARRAY_LEN(u64s); i++, q += 8)
		put_le64(q, u64s[i]);
	uint32_t u32s[] = { r->uid, r->gid, r->pid, r->mode, r->fields, r->nlink,
			    r->name_len, r->new_name_len, r->xname_len, r->value_len };
	for (size_t i = 0; i < MFS_ARRAY_LEN(u32s); i++, q += 4)
		put_le32(q, u32s[i]);
	put_le64(q, r->fversion);
	q += 8;
	if (r->origin) {
		put_le64(q, r->origin);
		q += 8;
	}
	if (r->name_len)
		memcpy(q, r->name, r->name_len), q += r->name_len;
	if (r->new_name_len)
		memcpy(q, r->new_name, r->new_name_len), q += r->new_name_len;
	if (r->xname_len)
		memcpy(q, r->xname, r->xname_len), q += r->xname_len;
	if (r->value_len)
		memcpy(q, r->value, r->value_len), q += r->value_len;
	*out = p;
	*out_len = len;
	return 0;
}

int cl_decode(const unsigned char *p, size_t len, struct cl_rec *r)
{
	memset(r, 0, sizeof *r);
	if (len < CL_HEADER1_LEN || p[0] < 1 || p[0] > CL_FORMAT_ORIGIN)
		return -EINVAL;
	size_t header = p[0] == 1 ? CL_HEADER1_LEN : p[0] == CL_FORMAT ? CL_HEADER_LEN : CL_HEADER3_LEN;
	if (len < header)
		return -EINVAL;
	r->op = p[1];
	const unsigned char *q = p + 2;
	uint64_t u64s[8];
	for (size_t i = 0; i < 8; i++, q += 8)
		u64s[i] = get_le64(q);
	uint32_t u32s[10];
	for (size_t i = 0; i < 10; i++, q += 4)
		u32s[i] = get_le32(q);
	r->time_ns = (int64_t)u64s[0];
	r->ino = u64s[1];
	r->version = u64s[2];
	r->parent = u64s[3];
	r->new_parent = u64s[4];
	r->replaced = u64s[5];
	r->size = u64s[6];
	r->proc = u64s[7];
	r->uid = u32s[0];
	r->gid = u32s[1];
	r->pid = u32s[2];
	r->mode = u32s[3];
	r->fields = u32s[4];
	r->nlink = u32s[5];
	r->name_len = u32s[6];
	r->new_name_len = u32s[7];
	r->xname_len = u32s[8];
	r->value_len = u32s[9];
	if (header >= CL_HEADER_LEN) {
		r->fversion = get_le64(q);
		q += 8;
	}
	if (header == CL_HEADER3_LEN) {
		r->origin = get_le64(q);
		q += 8;
		if (!r->origin)
			return -EINVAL; /* written as format 2 */
	}
	size_t need = (size_t)r->name_len + r->new_name_len + r->xname_len + r->value_len;
	if (len - header != need || r->op == 0 || r->op >= CL_OP_MAX)
		return -EINVAL;
	r->name = (const char *)q;
	q += r->name_len;
	r->new_name = (const char *)q;
	q += r->new_name_len;
	r->xname = (const char *)q;
	q += r->xname_len;
	r->value = q;
	return 0;
}

/* ---------------------------------------------------------------- holes */

int64_t cl_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t cl_settle_ns(void)
{
	const char *e = getenv("METAFS_CHANGELOG_SETTLE_MS");
	char *end;
	long long ms = e && *e ? strtoll(e, &end, 10) : -1;
	return ms >= 0 && e && !*end ? ms * 1000000LL : 15 * 1000000000LL;
}

int cl_holes_note(struct cl_holes *h, uint64_t lo, uint64_t hi, int64_t now_ns)
{
	for (size_t i = 0; i < h->n; i++) {
		const struct cl_hole *o = &h->v[i];
		if (o->hi < lo || o->lo > hi)
			continue;
		/* already known in part: the ids outside it are new */
		uint64_t olo = o->lo, ohi = o->hi;
		int rc = 0;
		if (lo < olo)
			rc = cl_holes_note(h, lo, olo - 1, now_ns);
		if (!rc && hi > ohi)
			rc = cl_holes_note(h, ohi + 1, hi, now_ns);
		return rc;
	}
	if (mfs_array_reserve(&h->v, &h->cap, h->n, sizeof *h->v))
		return -ENOMEM;
	h->v[h->n++] = (struct cl_hole){ lo, hi, now_ns };
	return 0;
}

int cl_holes_fill(struct cl_holes *h, uint64_t seq)
{
	for (size_t i = 0; i < h->n; i++) {
		struct cl_hole *o = &h->v[i];
		if (seq < o->lo || seq > o->hi)
			continue;
		if (o->lo == o->hi) {
			h->v[i] = h->v[--h->n];
		} else if (seq == o->lo) {
			o->lo++;
		} else if (seq == o->hi) {
			o->hi--;
		} else {
			struct cl_hole upper = { seq + 1, o->hi, o->since_ns };
			o->hi = seq - 1;
			if (mfs_array_reserve(&h->v, &h->cap, h->n, sizeof *h->v))
				return -ENOMEM;
			h->v[h->n++] = upper;
		}
		return 0;
	}
	return 0;
}
