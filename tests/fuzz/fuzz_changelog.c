/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for changelog records: any bytes must decode or be
 * refused without reading outside them, and a record that decodes must
 * encode back to the same bytes (bar the reserved header slot) and decode
 * again to the same fields. */
#include "metadata.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* where cl_encode writes its reserved, always-zero u64 */
#define RESERVED_OFF (2 + 7 * 8)

static bool same_bytes(const void *a, const void *b, uint32_t len)
{
	return len == 0 || memcmp(a, b, len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cl_rec a, b;
	if (cl_decode(data, size, &a))
		return 0;
	unsigned char *enc;
	size_t len;
	if (cl_encode(&a, &enc, &len))
		return 0;
	if (len != size || memcmp(enc, data, RESERVED_OFF) ||
	    memcmp(enc + RESERVED_OFF + 8, data + RESERVED_OFF + 8, size - RESERVED_OFF - 8))
		abort();
	if (cl_decode(enc, len, &b))
		abort();
	if (a.seq != b.seq || a.time_ns != b.time_ns || a.op != b.op || a.ino != b.ino ||
	    a.version != b.version || a.uid != b.uid || a.gid != b.gid || a.pid != b.pid ||
	    a.mode != b.mode || a.parent != b.parent || a.new_parent != b.new_parent ||
	    a.replaced != b.replaced || a.fields != b.fields || a.nlink != b.nlink || a.size != b.size ||
	    a.name_len != b.name_len || a.new_name_len != b.new_name_len || a.xname_len != b.xname_len ||
	    a.value_len != b.value_len || !same_bytes(a.name, b.name, a.name_len) ||
	    !same_bytes(a.new_name, b.new_name, a.new_name_len) ||
	    !same_bytes(a.xname, b.xname, a.xname_len) || !same_bytes(a.value, b.value, a.value_len))
		abort();
	free(enc);
	return 0;
}
