/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the query language: any bytes must parse or fail
 * with a one-line message that points inside the query, and a parsed tree
 * must resolve, format and free without faults, leaks or hangs. */
#include "query.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Half of the names are known, so both the xattr and the unknown-field
 * paths are reached. */
static bool has_attr(void *arg, const char *name)
{
	return name[0] == 'a';
}

static void check_error(const char *q, const char *err, int pos)
{
	if (!err[0] || strchr(err, '\n') || pos < 0 || (size_t)pos > strlen(q))
		abort();
}

static void check_format(const struct q_node *n)
{
	char buf[256];
	int len = q_format(n, buf, sizeof buf);
	size_t want = len < (int)sizeof buf ? (size_t)len : sizeof buf - 1;
	if (len < 2 || strlen(buf) != want || strchr(buf, '\n'))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *q = malloc(size + 1);
	if (!q)
		return 0;
	memcpy(q, data, size);
	q[size] = 0;

	char err[256];
	int pos = -1;
	struct q_node *n = (struct q_node *)q;
	if (q_parse(q, &n, err, sizeof err, &pos)) {
		if (n)
			abort();
		check_error(q, err, pos);
	} else {
		check_format(n);
		if (q_resolve(n, 1700000000LL * 1000000000LL, has_attr, NULL, err, sizeof err, &pos))
			check_error(q, err, pos);
		else
			check_format(n);
		q_free(n);
	}
	free(q);
	return 0;
}
