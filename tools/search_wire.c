/* SPDX-License-Identifier: Apache-2.0 */
/* A search request on the wire to the search service: fields of a tag
 * byte, a little-endian u32 length and the bytes, in any order. Strings may
 * hold any byte but NUL (names need not be UTF-8). */
#include "search.h"
#include "common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { F_QUERY = 'q', F_PREFIX = 'p', F_UNDER = 'u', F_OPTIONS = 'o' };
#define OPTIONS_LEN 20

static int put_field(char **buf, size_t *len, size_t *cap, char tag, const void *data, size_t n)
{
	if (*len + 5 + n > *cap) {
		size_t c = (*cap ? *cap * 2 : 256) + 5 + n;
		char *b = realloc(*buf, c);
		if (!b)
			return -1;
		*buf = b;
		*cap = c;
	}
	(*buf)[*len] = tag;
	put_le32((unsigned char *)*buf + *len + 1, (uint32_t)n);
	memcpy(*buf + *len + 5, data, n);
	*len += 5 + n;
	return 0;
}

char *search_request_encode(const struct find_request *rq, size_t *outlen)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	unsigned char o[OPTIONS_LEN] = { 0 };
	o[0] = (unsigned char)rq->sort;
	o[1] = rq->reverse;
	o[2] = (unsigned char)rq->out;
	o[3] = rq->nul;
	o[4] = rq->count_only;
	o[5] = rq->consistent;
	put_le64(o + 8, (uint64_t)(int64_t)rq->limit);
	double ms = rq->timeout * 1000 + 0.5;
	put_le32(o + 16, !(ms >= 0) ? 0 : ms >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)ms);
	int bad = put_field(&buf, &len, &cap, F_OPTIONS, o, sizeof o) ||
		  put_field(&buf, &len, &cap, F_QUERY, rq->query, strlen(rq->query)) ||
		  put_field(&buf, &len, &cap, F_PREFIX, rq->prefix ? rq->prefix : "", rq->prefix ? strlen(rq->prefix) : 0);
	for (const char *const *u = rq->under; !bad && u && *u; u++)
		bad = put_field(&buf, &len, &cap, F_UNDER, *u, strlen(*u));
	if (bad) {
		free(buf);
		return NULL;
	}
	*outlen = len;
	return buf;
}

/* Decodes in place: strings point into buf, whose fields get NUL-terminated
 * by moving each tag byte out of the way. The caller frees rq->under. */
int search_request_decode(char *buf, size_t len, struct find_request *rq)
{
	memset(rq, 0, sizeof *rq);
	size_t nunder = 0;
	for (size_t at = 0; at + 5 <= len;) {
		uint32_t n = get_le32((unsigned char *)buf + at + 1);
		if (n > len - at - 5)
			return -1;
		at += 5 + n;
		nunder += buf[at - 5 - n] == F_UNDER;
	}
	const char **under = calloc(nunder + 1, sizeof *under);
	if (!under)
		return -1;
	bool have_opts = false;
	size_t nu = 0, at = 0;
	while (at + 5 <= len) {
		char tag = buf[at];
		uint32_t n = get_le32((unsigned char *)buf + at + 1);
		char *data = buf + at + 5;
		/* the string starts one byte early, over the header, and ends
		 * where the next field's tag was: copy it down and terminate */
		memmove(buf + at, data, n);
		buf[at + n] = '\0';
		data = buf + at;
		at += 5 + n;
		if (memchr(data, '\0', n) && tag != F_OPTIONS) {
			free(under);
			return -1;
		}
		switch (tag) {
		case F_QUERY: rq->query = data; break;
		case F_PREFIX: rq->prefix = data; break;
		case F_UNDER: under[nu++] = data; break;
		case F_OPTIONS: {
			if (n != OPTIONS_LEN) {
				free(under);
				return -1;
			}
			const unsigned char *o = (const unsigned char *)data;
			if (o[0] > IDX_SORT_PATH || o[2] > OUT_LONG) {
				free(under);
				return -1;
			}
			rq->sort = (enum idx_sort)o[0];
			rq->reverse = o[1];
			rq->out = (enum out_kind)o[2];
			rq->nul = o[3];
			rq->count_only = o[4];
			rq->consistent = o[5];
			int64_t limit = (int64_t)get_le64(o + 8);
			rq->limit = limit < 0 ? -1 : (long)limit;
			rq->timeout = get_le32(o + 16) / 1000.0;
			have_opts = true;
			break;
		}
		default: /* a field a newer client sends: ignore */
			break;
		}
	}
	if (at != len || !have_opts || !rq->query) {
		free(under);
		return -1;
	}
	rq->under = nu ? under : NULL;
	if (!nu)
		free(under);
	return 0;
}
