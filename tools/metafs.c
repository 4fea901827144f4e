/* SPDX-License-Identifier: Apache-2.0 */
#include "tools.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#ifndef METAFS_VERSION
#define METAFS_VERSION "0.1.0"
#endif

const char *type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "file";
	case S_IFDIR: return "dir";
	case S_IFLNK: return "symlink";
	case S_IFIFO: return "fifo";
	case S_IFSOCK: return "socket";
	case S_IFCHR: return "chardev";
	case S_IFBLK: return "blockdev";
	default: return "unknown";
	}
}

void die_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("metafs: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void usage(FILE *f)
{
	fputs("usage: metafs COMMAND [ARGS]\n"
	      "\n"
	      "commands:\n"
	      "  format VOLUME [--inline-threshold BYTES] [--chunk-size BYTES]\n"
	      "                         create an embedded volume in directory VOLUME\n"
	      "  mount VOLUME MOUNTPOINT [-f] [-d] [-o OPTIONS]\n"
	      "                         serve VOLUME at MOUNTPOINT (unmount: fusermount3 -u MOUNTPOINT)\n"
	      "  changelog VOLUME|PATH [--from SEQ] [--follow] [--json]\n"
	      "                         print the ordered record of changes\n"
	      "  stats VOLUME|PATH [--json]\n"
	      "                         print what the volume holds and how it is set up\n"
	      "  fsck VOLUME [--repair] [--scrub] [--json] [--index]\n"
	      "                         check (and repair) an unmounted volume\n"
	      "  find [PATH...] QUERY [-0] [--json] [-l] [--sort KEY] [--limit N] [--count] [--consistent]\n"
	      "                         search by name, path, attributes, tags and xattr fields\n"
	      "  lineage FILE [--up|--down] [--depth N] [--json|--prov-json|--dot|--svg]\n"
	      "                         which files and processes FILE was made from, or what\n"
	      "                         was made from it\n"
	      "  indexer VOLUME|PATH [--once]\n"
	      "                         apply the changelog to the search index (the daemon does it too)\n"
	      "  reindex VOLUME|PATH    rebuild the search index from the metadata\n"
	      "  dump VOLUME [-o FILE] [--json]\n"
	      "                         write an unmounted volume whole as JSON lines\n"
	      "  load VOLUME [-i FILE] [--json] [--no-index] [--new-uuid]\n"
	      "                         fill a freshly formatted volume from a dump (dump and\n"
	      "                         load move a volume between embedded and cluster stores)\n"
	      "\n"
	      "VOLUME is a directory holding an embedded volume, or mysql://USER@HOST[:PORT]/DB\n"
	      "for a cluster volume; PATH may be any path inside a mounted metafs.\n"
	      "`metafs COMMAND --help` says more.\n",
	      f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("metafs %s\n", METAFS_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "format"))
		return cmd_format(argc - 1, argv + 1);
	if (!strcmp(cmd, "mount"))
		return cmd_mount(argc - 1, argv + 1);
	if (!strcmp(cmd, "changelog"))
		return cmd_changelog(argc - 1, argv + 1);
	if (!strcmp(cmd, "stats"))
		return cmd_stats(argc - 1, argv + 1);
	if (!strcmp(cmd, "fsck"))
		return cmd_fsck(argc - 1, argv + 1);
	if (!strcmp(cmd, "find"))
		return cmd_find(argc - 1, argv + 1);
	if (!strcmp(cmd, "lineage"))
		return cmd_lineage(argc - 1, argv + 1);
	if (!strcmp(cmd, "indexer"))
		return cmd_indexer(argc - 1, argv + 1);
	if (!strcmp(cmd, "reindex"))
		return cmd_reindex(argc - 1, argv + 1);
	if (!strcmp(cmd, "dump"))
		return cmd_dump(argc - 1, argv + 1);
	if (!strcmp(cmd, "load"))
		return cmd_load(argc - 1, argv + 1);
	/* mount(8) runs `metafs VOLUME MOUNTPOINT -o OPTIONS` through
	 * mount.fuse3 for `mount -t fuse.metafs` and fstab lines */
	struct stat st;
	if (argc >= 3 && argv[2][0] != '-' && stat(argv[2], &st) == 0 && S_ISDIR(st.st_mode))
		return cmd_mount(argc, argv);
	die_msg("unknown command '%s' (try: metafs --help)", cmd);
	return 2;
}
