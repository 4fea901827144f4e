/* SPDX-License-Identifier: Apache-2.0 */
#include "tools.h"
#include "metadata.h"
#include "common.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

int cmd_format(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "inline-threshold", required_argument, NULL, 'i' },
		{ "chunk-size", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct mfs_format_opts o = { .inline_threshold = UINT32_MAX, .chunk_size = 0 };
	int c;
	uint64_t v;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			if (mfs_parse_size(optarg, &v) || v > UINT32_MAX) {
				die_msg("--inline-threshold %s: not a size (e.g. 65536 or 64K)", optarg);
				return 2;
			}
			o.inline_threshold = (uint32_t)v;
			break;
		case 'c':
			if (mfs_parse_size(optarg, &v) || v == 0 || v > UINT32_MAX) {
				die_msg("--chunk-size %s: not a size (e.g. 262144 or 256K)", optarg);
				return 2;
			}
			o.chunk_size = (uint32_t)v;
			break;
		case 'h':
			printf("usage: metafs format VOLUME [--inline-threshold BYTES] [--chunk-size BYTES]\n"
			       "  Creates an embedded volume in directory VOLUME (made if missing).\n"
			       "  --inline-threshold  files up to this size live beside their inode (default 64K, max 1M)\n"
			       "  --chunk-size        larger files are stored in chunks of this size (default 256K,\n"
			       "                      a power of two from 4K to 16M)\n");
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1) {
		die_msg("usage: metafs format VOLUME [--inline-threshold BYTES] [--chunk-size BYTES]");
		return 2;
	}
	const char *vol = argv[optind];
	char err[1024] = "";
	if (mfs_format(vol, &o, err, sizeof err)) {
		die_msg("%s", err);
		return 1;
	}
	struct mfs_volume *mv;
	if (mfs_open(vol, 0, &mv, err, sizeof err) == 0) {
		printf("formatted %s: inline threshold %u bytes, chunk size %u bytes\n", vol,
		       mv->sb.inline_threshold, mv->sb.chunk_size);
		mfs_close(mv);
	}
	return 0;
}
