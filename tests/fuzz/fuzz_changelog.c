/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for changelog records: any bytes must decode or be
 * refused without reading outside them, and a record that decodes must
 * encode back to the same bytes (a record of format 1, written before the
 * provenance fields, encodes as format 2) and decode again to the same
 * fields (format 3, a record with an origin, included). */
#include "metadata.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* where format 1 kept a reserved u64 (format 2's proc), and its header length */
#define RESERVED_OFF (2 + 7 * 8)
#define HEADER1_LEN (2 + 8 * 8 + 4 * 10)

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
	if (data[0] == 1) {
		/* the same header bar the format byte and the reserved slot,
		 * then fversion (0), then the same strings */
		if (len != size + 8 || enc[0] != 2 || memcmp(enc + 1, data + 1, RESERVED_OFF - 1) ||
		    memcmp(enc + RESERVED_OFF + 8, data + RESERVED_OFF + 8, HEADER1_LEN - RESERVED_OFF - 8) ||
		    memcmp(enc + HEADER1_LEN + 8, data + HEADER1_LEN, size - HEADER1_LEN))
			abort();
	} else if (len != size || memcmp(enc, data, size)) {
		abort();
	}
	if (cl_decode(enc, len, &b))
		abort();
	if (a.proc != b.proc || a.fversion != b.fversion || a.origin != b.origin || a.seq != b.seq || a.time_ns != b.time_ns || a.op != b.op || a.ino != b.ino ||
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
