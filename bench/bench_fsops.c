/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The filesystem workloads of bench/run_fs.py that no standard tool runs the
 * way we need: mdtest-like metadata phases (create, stat, rename, unlink of
 * empty files, in one flat directory or in a tree), small-file write and
 * read-back, and a raw readdir count. Each call runs one phase, so that the
 * harness can remount (drop every cache) between phases, and prints one JSON
 * line: {"phase":…,"ops":N,"seconds":S,"ops_per_s":R}.
 *
 *   bench_fsops PHASE DIR N [--tree] [--size BYTES]
 *   PHASE: create stat rename unlink write read readdir
 *
 * File i lives in DIR itself (flat) or in DIR/dXX/dYY (--tree: 10 × 10 leaf
 * directories, files spread evenly, consecutive numbers in one directory, as
 * mdtest does). A failing call stops the phase with a message and exit 1: a
 * benchmark that silently skips work would report a speed it never had.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define FANOUT 10
#define LEAVES (FANOUT * FANOUT)

static const char *dir;
static long n;
static bool tree;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "bench_fsops: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void leaf_dir(long i, char *buf, size_t len)
{
	if (!tree) {
		snprintf(buf, len, "%s", dir);
		return;
	}
	long leaf = i * LEAVES / n;
	snprintf(buf, len, "%s/d%02ld/d%02ld", dir, leaf / FANOUT, leaf % FANOUT);
}

static void file_path(long i, const char *prefix, char *buf, size_t len)
{
	char d[4096];
	leaf_dir(i, d, sizeof d);
	snprintf(buf, len, "%s/%s%08ld", d, prefix, i);
}

static void make_tree(void)
{
	char p[4096];
	for (int a = 0; a < FANOUT; a++) {
		snprintf(p, sizeof p, "%s/d%02d", dir, a);
		if (mkdir(p, 0755) != 0 && errno != EEXIST)
			die("mkdir", p);
		for (int b = 0; b < FANOUT; b++) {
			snprintf(p, sizeof p, "%s/d%02d/d%02d", dir, a, b);
			if (mkdir(p, 0755) != 0 && errno != EEXIST)
				die("mkdir", p);
		}
	}
}

static void remove_tree(void)
{
	char p[4096];
	for (int a = 0; a < FANOUT; a++) {
		for (int b = 0; b < FANOUT; b++) {
			snprintf(p, sizeof p, "%s/d%02d/d%02d", dir, a, b);
			if (rmdir(p) != 0)
				die("rmdir", p);
		}
		snprintf(p, sizeof p, "%s/d%02d", dir, a);
		if (rmdir(p) != 0)
			die("rmdir", p);
	}
}

/* getdents64 directly, as `ls -f` does, with a large buffer */
static long count_entries(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		die("open", path);
	static char buf[1 << 20];
	long count = 0;
	for (;;) {
		long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
		if (got < 0)
			die("getdents64", path);
		if (got == 0)
			break;
		for (long off = 0; off < got;) {
			unsigned short reclen;
			memcpy(&reclen, buf + off + 16, sizeof reclen);
			count++;
			off += reclen;
		}
	}
	close(fd);
	return count;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: bench_fsops create|stat|rename|unlink|write|read|readdir DIR N [--tree] [--size BYTES]\n");
		return 2;
	}
	const char *phase = argv[1];
	dir = argv[2];
	n = strtol(argv[3], NULL, 10);
	size_t size = 4096;
	for (int a = 4; a < argc; a++) {
		if (strcmp(argv[a], "--tree") == 0)
			tree = true;
		else if (strcmp(argv[a], "--size") == 0 && a + 1 < argc)
			size = strtoul(argv[++a], NULL, 10);
		else {
			fprintf(stderr, "bench_fsops: unknown argument %s\n", argv[a]);
			return 2;
		}
	}
	if (n <= 0) {
		fprintf(stderr, "bench_fsops: N must be positive\n");
		return 2;
	}
	char *data = malloc(size ? size : 1);
	if (!data)
		return 1;
	for (size_t k = 0; k < size; k++)
		data[k] = (char)('a' + k % 26);

	char p[4200], q[4200];
	long ops = n;
	double t0 = now();
	if (strcmp(phase, "create") == 0 || strcmp(phase, "write") == 0) {
		if (tree)
			make_tree();
		t0 = now();
		bool write_data = phase[0] == 'w';
		for (long i = 0; i < n; i++) {
			file_path(i, "f", p, sizeof p);
			int fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
			if (fd < 0)
				die("create", p);
			if (write_data && write(fd, data, size) != (ssize_t)size)
				die("write", p);
			if (close(fd) != 0)
				die("close", p);
		}
	} else if (strcmp(phase, "stat") == 0) {
		struct stat st;
		for (long i = 0; i < n; i++) {
			file_path(i, "f", p, sizeof p);
			if (stat(p, &st) != 0)
				die("stat", p);
		}
	} else if (strcmp(phase, "read") == 0) {
		char *back = malloc(size + 1);
		if (!back)
			return 1;
		for (long i = 0; i < n; i++) {
			file_path(i, "f", p, sizeof p);
			int fd = open(p, O_RDONLY);
			if (fd < 0)
				die("open", p);
			ssize_t got = read(fd, back, size + 1);
			if (got != (ssize_t)size || memcmp(back, data, size) != 0) {
				fprintf(stderr, "bench_fsops: %s reads back wrong (%zd bytes)\n", p, got);
				return 1;
			}
			close(fd);
		}
		free(back);
	} else if (strcmp(phase, "rename") == 0) {
		for (long i = 0; i < n; i++) {
			file_path(i, "f", p, sizeof p);
			file_path(i, "r", q, sizeof q);
			if (rename(p, q) != 0)
				die("rename", p);
		}
	} else if (strcmp(phase, "unlink") == 0) {
		for (long i = 0; i < n; i++) {
			/* the rename phase gave every file the r prefix */
			file_path(i, "r", p, sizeof p);
			if (unlink(p) != 0)
				die("unlink", p);
		}
		double t1 = now();
		if (tree)
			remove_tree();
		printf("{\"phase\":\"unlink\",\"ops\":%ld,\"seconds\":%.6f,\"ops_per_s\":%.1f}\n", ops, t1 - t0,
		       ops / (t1 - t0));
		return 0;
	} else if (strcmp(phase, "readdir") == 0) {
		long got = count_entries(dir);
		if (got != n + 2) {
			fprintf(stderr, "bench_fsops: %s lists %ld entries, expected %ld\n", dir, got, n + 2);
			return 1;
		}
	} else {
		fprintf(stderr, "bench_fsops: unknown phase %s\n", phase);
		return 2;
	}
	double t1 = now();
	printf("{\"phase\":\"%s\",\"ops\":%ld,\"seconds\":%.6f,\"ops_per_s\":%.1f}\n", phase, ops, t1 - t0,
	       ops / (t1 - t0));
	free(data);
	return 0;
}
