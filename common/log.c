/* SPDX-License-Identifier: Apache-2.0 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int log_fd = STDERR_FILENO;
static enum mfs_log_level min_level = MFS_LOG_INFO;

void mfs_log_set_level(enum mfs_log_level level)
{
	min_level = level;
}

int mfs_log_to_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	log_fd = fd;
	return 0;
}

void mfs_log(enum mfs_log_level level, const char *fmt, ...)
{
	static const char *names[] = { "debug", "info", "warning", "error" };
	if (level < min_level)
		return;
	char line[2048];
	char ts[64];
	mfs_format_time(mfs_now_ns(), ts, sizeof ts);
	int n = snprintf(line, sizeof line, "%s metafs[%d] %s: ", ts, (int)getpid(), names[level]);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	/* One write() per line keeps lines from concurrent threads whole. */
	ssize_t r = write(log_fd, line, (size_t)n);
	(void)r;
}
