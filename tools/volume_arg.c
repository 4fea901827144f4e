/* SPDX-License-Identifier: Apache-2.0 */
#include "tools.h"
#include "metadata.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Undoes mountinfo's octal escapes (\040 for a space, ...). */
static void unescape(char *s)
{
	char *q = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7' && p[3] >= '0' &&
		    p[3] <= '7') {
			*q++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
			p += 3;
		} else {
			*q++ = *p;
		}
	}
	*q = '\0';
}

/* libfuse escapes ',' and '\' in fsname with a backslash */
static void unescape_fsname(char *s)
{
	char *q = s;
	for (char *p = s; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		*q++ = *p;
	}
	*q = '\0';
}

/* Splits a line of /proc/self/mountinfo
 *   id parent major:minor root mountpoint opts [optional...] - type source superopts
 * and says whether it is a metafs mount; *dash is the index of "-". */
static bool metafs_mount_line(char *line, char *fields[16], int *dash)
{
	int n = 0;
	for (char *save = NULL, *t = strtok_r(line, " \n", &save); t && n < 16; t = strtok_r(NULL, " \n", &save))
		fields[n++] = t;
	*dash = -1;
	for (int i = 6; i < n; i++)
		if (!strcmp(fields[i], "-")) {
			*dash = i;
			break;
		}
	if (n < 5 || *dash < 0 || *dash + 3 >= n || strcmp(fields[*dash + 1], "fuse.metafs"))
		return false;
	unescape(fields[4]);
	return true;
}

int resolve_volume(const char *arg, char *out, size_t outlen)
{
	char mnt[PATH_MAX];
	return resolve_target(arg, out, outlen, mnt, sizeof mnt);
}

int open_volume_ro(const char *arg, char *vol, size_t vollen, struct mfs_volume **v)
{
	if (resolve_volume(arg, vol, vollen))
		return -1;
	char err[1024] = "";
	if (mfs_open(vol, STORE_OPEN_READONLY, v, err, sizeof err)) {
		die_msg("%s", err);
		return -1;
	}
	return 0;
}

int resolve_target(const char *arg, char *out, size_t outlen, char *mntout, size_t mntlen)
{
	mntout[0] = '\0';
	if (!strncmp(arg, "mysql://", 8)) {
		snprintf(out, outlen, "%s", arg);
		return 0;
	}
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/db/CURRENT", arg);
	if (access(path, F_OK) == 0) {
		snprintf(out, outlen, "%s", arg);
		return 0;
	}
	char real[PATH_MAX];
	if (!realpath(arg, real)) {
		die_msg("%s: %s", arg, strerror(errno));
		return -1;
	}
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f) {
		die_msg("cannot read /proc/self/mountinfo: %s", strerror(errno));
		return -1;
	}
	char line[8192], best[PATH_MAX] = "", best_mnt[PATH_MAX] = "";
	size_t best_len = 0;
	while (fgets(line, sizeof line, f)) {
		char *fields[16];
		int dash;
		if (!metafs_mount_line(line, fields, &dash))
			continue;
		char *mnt = fields[4];
		size_t len = strlen(mnt);
		bool inside = !strcmp(mnt, "/") || (!strncmp(real, mnt, len) && (real[len] == '/' || real[len] == '\0'));
		if (inside && len >= best_len) {
			char *src = fields[dash + 2];
			unescape(src);
			unescape_fsname(src);
			snprintf(best, sizeof best, "%s", src);
			snprintf(best_mnt, sizeof best_mnt, "%s", mnt);
			best_len = len;
		}
	}
	fclose(f);
	if (!best[0]) {
		die_msg("%s is neither a metafs volume nor inside a mounted metafs", arg);
		return -1;
	}
	snprintf(out, outlen, "%s", best);
	snprintf(mntout, mntlen, "%s", best_mnt);
	return 0;
}

int mount_owner(const char *mnt, uid_t *uid)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return -1;
	char line[8192];
	int found = -1;
	while (fgets(line, sizeof line, f)) {
		char *fields[16];
		int dash;
		if (!metafs_mount_line(line, fields, &dash) || strcmp(fields[4], mnt))
			continue;
		/* the super options: rw,user_id=0,group_id=0,... (the last mount wins) */
		for (char *save = NULL, *o = strtok_r(fields[dash + 3], ",", &save); o; o = strtok_r(NULL, ",", &save))
			if (!strncmp(o, "user_id=", 8)) {
				*uid = (uid_t)strtoul(o + 8, NULL, 10);
				found = 0;
			}
	}
	fclose(f);
	return found;
}
