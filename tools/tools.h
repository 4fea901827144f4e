/* SPDX-License-Identifier: Apache-2.0 */
/* tools: the `metafs` command and its subcommands. */
#ifndef METAFS_TOOLS_H
#define METAFS_TOOLS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int cmd_format(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_changelog(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_fsck(int argc, char **argv);
int cmd_find(int argc, char **argv);
int cmd_indexer(int argc, char **argv);
int cmd_reindex(int argc, char **argv);
int cmd_lineage(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_load(int argc, char **argv);

/* Resolves a volume argument: a volume itself, or any path inside a
 * mounted metafs (found through /proc/self/mountinfo). */
int resolve_volume(const char *arg, char *out, size_t outlen);
struct mfs_volume;
/* Opens the volume arg resolves to (its path in vol), read-only; prints
 * why not. */
int open_volume_ro(const char *arg, char *vol, size_t vollen, struct mfs_volume **v);
/* The same, also giving the mountpoint ("" when arg names a volume). */
int resolve_target(const char *arg, char *vol, size_t vollen, char *mnt, size_t mntlen);

/* The uid of the daemon serving the mount at mnt (its user_id= option). */
int mount_owner(const char *mnt, uid_t *uid);

/* "file", "dir", "symlink", "fifo", "socket", "chardev", "blockdev" */
const char *type_name(uint32_t mode);

/* A process's arguments, each ended by a NUL, as a JSON array of strings
 * ("?" for one that is not UTF-8). */
json_t *argv_json(const char *argv, size_t len);

/* Prints "metafs: <message>" on stderr. */
void die_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---------------------------------------------------------------- dump format
 * Shared by `metafs dump` (cmd_dump.c, where the format is described) and
 * `metafs load` (cmd_load.c). */

#define DUMP_FORMAT "metafs-dump"
#define DUMP_VERSION 1

/* the record kinds, in the order a dump lists them */
enum dump_kind { DK_INODE, DK_DIRENT, DK_XATTR, DK_INLINE, DK_CHUNK, DK_PROV, DK_COUNT };
/* the "t" of each kind's lines, and the key of its count in the end record */
extern const char *const dump_kind_names[DK_COUNT];
extern const char *const dump_count_keys[DK_COUNT];

/* A number as JSON: an integer, or a decimal string above INT64_MAX. */
json_t *dump_u64(uint64_t v);
/* Reads one written by dump_u64; false when missing or not such a number. */
bool dump_get_u64(json_t *o, const char *key, uint64_t *out);
/* Bytes under key as a JSON string when they are UTF-8 without NUL, else
 * base64 under key + "_base64" (as `metafs changelog` prints them). */
int dump_set_bytes(json_t *o, const char *key, const void *p, size_t n);
/* Reads them back, malloc'd with a NUL after them: -ENOENT when neither
 * key is there, -EINVAL when the value is not a string or not base64. */
int dump_get_bytes(json_t *o, const char *key, unsigned char **out, size_t *len);
/* Strict base64 (RFC 4648, padded, no line breaks); malloc'd output. */
int dump_b64_decode(const char *s, size_t len, unsigned char **out, size_t *outlen);
/* The uuid as 8-4-4-4-12 hex digits, and back (-EINVAL on anything else). */
void dump_uuid_text(const unsigned char uuid[16], char out[37]);
int dump_uuid_parse(const char *s, unsigned char uuid[16]);

/* One progress line on stderr when it is a terminal, redrawn at most ten
 * times a second, for the commands that run long. */
struct progress_line {
	bool tty, shown;
	int64_t last_ns;
};
void progress_show(struct progress_line *p, bool force, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void progress_clear(struct progress_line *p);

#endif
