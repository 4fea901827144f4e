/* SPDX-License-Identifier: Apache-2.0 */
/* Small helpers every metafs library uses: logging, byte order, time. */
#ifndef METAFS_COMMON_H
#define METAFS_COMMON_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum mfs_log_level { MFS_LOG_DEBUG, MFS_LOG_INFO, MFS_LOG_WARN, MFS_LOG_ERROR };

/* Logging goes to stderr until mfs_log_to_file() redirects it (daemon mode). */
void mfs_log(enum mfs_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int mfs_log_to_file(const char *path);
void mfs_log_set_level(enum mfs_log_level level);

#define log_debug(...) mfs_log(MFS_LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  mfs_log(MFS_LOG_INFO, __VA_ARGS__)
#define log_warn(...)  mfs_log(MFS_LOG_WARN, __VA_ARGS__)
#define log_error(...) mfs_log(MFS_LOG_ERROR, __VA_ARGS__)

/* Big-endian encoding keeps integer keys sorted bytewise, which RocksDB scans rely on. */
static inline void put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (unsigned char)v;
		v >>= 8;
	}
}

static inline uint64_t get_be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

struct timespec mfs_now(void);
int64_t mfs_now_ns(void);
void mfs_sleep_us(unsigned us);
/* A condition variable whose timed waits count in CLOCK_MONOTONIC time,
 * so that a change of the wall clock neither shortens nor stretches them. */
void mfs_cond_init_monotonic(pthread_cond_t *cv);

/* Parses sizes such as 65536, 64K, 1M, 2G. Returns -1 on malformed input. */
int mfs_parse_size(const char *s, uint64_t *out);

/* Formats ns since the epoch as RFC 3339 UTC with nanoseconds. */
void mfs_format_time(int64_t ns, char *buf, size_t len);

#define MFS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Makes room for element n of a growable array of elements of size bytes,
 * doubling its capacity. Returns 0 or -ENOMEM (the array is kept). */
int mfs_array_reserve(void *arrayp, size_t *cap, size_t n, size_t size);

struct u64_vec {
	uint64_t *v;
	size_t n, cap;
};

int u64_vec_push(struct u64_vec *l, uint64_t x);
/* A callback of the store's list operations that collects into a u64_vec. */
int u64_vec_collect(void *vec, uint64_t x);

#endif
