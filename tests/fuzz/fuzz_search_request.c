/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the search service's request decoder, which reads
 * what any local user sends to a mount's daemon: any bytes must decode or be
 * refused without faults or leaks, and what decodes must encode to a request
 * that decodes to the same search. */
#include "search.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	struct find_request a;
	if (search_request_decode(buf, size, &a) == 0) {
		if (!a.query || a.sort > IDX_SORT_PATH || a.out > OUT_LONG || a.limit < -1 || a.timeout < 0)
			abort();
		size_t len;
		char *enc = search_request_encode(&a, &len);
		if (!enc)
			abort();
		struct find_request b;
		if (search_request_decode(enc, len, &b) != 0)
			abort();
		if (!same_str(a.query, b.query) || a.sort != b.sort || a.reverse != b.reverse || a.out != b.out ||
		    a.nul != b.nul || a.count_only != b.count_only || a.consistent != b.consistent ||
		    a.limit != b.limit || (long)(a.timeout * 1000 + 0.5) != (long)(b.timeout * 1000 + 0.5) ||
		    !same_str(a.prefix && a.prefix[0] ? a.prefix : NULL, b.prefix && b.prefix[0] ? b.prefix : NULL))
			abort();
		size_t i = 0;
		for (; a.under && a.under[i]; i++)
			if (!b.under || !same_str(a.under[i], b.under[i]))
				abort();
		if (b.under && b.under[i])
			abort();
		free((void *)b.under);
		free(enc);
	}
	free((void *)a.under);
	free(buf);
	return 0;
}
