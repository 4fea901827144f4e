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

#endif
