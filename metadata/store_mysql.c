/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cluster store: the store interface over the MySQL protocol (MariaDB
 * Connector/C), for MariaDB, MariaDB Galera and MySQL NDB Cluster.
 *
 * Named by mysql://user@host[:port][,host[:port]...]/db[?option&...]:
 *   engine=NAME         table engine at format time (InnoDB; ndbcluster for NDB)
 *   password_file=PATH  the password, first line of PATH (else the
 *                       METAFS_MYSQL_PASSWORD environment variable)
 *   ssl_ca=PATH, ssl_cert=PATH, ssl_key=PATH, tls=required|verify
 *   connect_wait=SECONDS  how long an operation waits for some server to
 *                       answer before it fails with EIO (default 30)
 *   causal_reads=0|1    on Galera, whether a read waits for the node to
 *                       apply what the cluster committed before it
 *                       (wsrep_sync_wait; default 1)
 * A password in the URL itself is refused: the URL shows in /proc/mounts.
 *
 * One table per record kind, mirroring the embedded store's keys: inodes,
 * dirents (by name, with unique (parent, cookie) and by-inode indexes kept
 * by the server), xattrs, inline_data (small files, written in the same
 * transaction as their inode), chunks, orphans, prov, changelog (AUTO_INCREMENT
 * ids: in a cluster they may become visible out of order, which readers
 * tolerate by applying records by inode version), counters, locks, sessions,
 * plocks, commit_marks, holds (the files each mount has open) and super.
 * No FULLTEXT, no reliance on REPEATABLE READ: sessions run READ
 * COMMITTED, every read-then-write goes through SELECT ... FOR UPDATE. A
 * transaction's writes by key wait in the client until it reads again or
 * commits, and go with the commit in one CALL of the procedure
 * metafs_apply4 (apply_proc).
 *
 * Connections are pooled; a transaction holds one from begin to commit.
 * Deadlocks, lock timeouts and Galera certification conflicts (1213, 1205)
 * and duplicate-key races return MFS_ERETRY, and the namespace runs the whole
 * operation again. A lost connection or a node that is not ready (2006,
 * 2013, 1047, ...) also returns MFS_ERETRY, and the next connection goes to
 * the next host of the URL. A connection lost during the commit is
 * ambiguous: the connection's commit mark, which the commit itself writes,
 * tells on a new connection whether it committed, so an operation is
 * neither lost nor applied twice.
 */
#include "metadata.h"
#include "locks.h"
#include "common.h"

#include <ctype.h>
#include <errno.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HOSTS 16
#define POOL_MAX 64
#define INO_RESERVE 4096
#define MAXCOL 44
#define HEARTBEAT_S 5
/* a session silent this long is gone: its orphans may be reclaimed */
#define SESSION_DEAD_S 60
#define LOCK_WAIT_S 2
#define SCHEMA_VERSION 4
/* deferred writes go to the server in one call when there are this many */
#define DEFER_OPS 512
#define DEFER_BYTES (1u << 20)

/* ---------------------------------------------------------------- statements */

/* The procedure's name carries the schema that made it: a migration
 * creates the new one beside the old, which mounts of the earlier version
 * still running go on calling. */
#define APPLY_PROC "metafs_apply4"

enum {
	S_INODE_GET,
	S_INODE_GET_LOCK,
	S_INODE_GET_HELD,
	S_INODE_SCAN,
	S_DIRENT_GET,
	S_ENTRY_GET,
	S_ENTRY_GET_LOCK,
	S_NAMES_OF,
	S_DIR_LIST,
	S_DIRENT_SCAN,
	S_NAMES_SCAN,
	S_XATTR_GET,
	S_XATTR_LIST,
	S_XATTR_SCAN,
	S_INLINE_GET,
	S_INLINE_SCAN,
	S_CHUNK_GET,
	S_CHUNK_PUT,
	S_CHUNK_DEL,
	S_CHUNK_LIST,
	S_CHUNK_SCAN,
	S_ORPHAN_LIST,
	S_PROV_GET,
	S_PROV_GET_LOCK,
	S_PROV_SCAN,
	S_PROV_LAST,
	S_LOG_READ,
	S_LOG_BOUNDS,
	S_LOG_COUNT,
	S_LOCK_GET,
	S_LOCK_PUT,
	S_INO_RESERVE,
	S_INO_RAISE,
	S_INO_FLOOR,
	S_WRITERS,
	S_SUPER_GET,
	S_SUPER_PUT,
	S_PLOCK_LIST,
	S_PLOCK_PUT,
	S_PLOCK_DEL,
	S_SESSION_PUT,
	S_SESSION_DEL,
	S_MARKS_DEL,
	S_MARKS_REAP,
	S_MARK_GET,
	S_HOLDS_DEL,
	S_HOLDS_REAP,
	S_APPLY,
	S_COUNT
};

#define INODE_COLS                                                                         \
	"mode, nlink, uid, gid, rdev, size, version, parent, next_cookie, flags, atime_s, " \
	"atime_ns, mtime_s, mtime_ns, ctime_s, ctime_ns, btime_s, btime_ns"

/* the inode columns of table alias x, ino first */
#define INODE_COLS_OF(x)                                                                                    \
	x ".ino, " x ".mode, " x ".nlink, " x ".uid, " x ".gid, " x ".rdev, " x ".size, " x ".version, " x  \
	".parent, " x ".next_cookie, " x ".flags, " x ".atime_s, " x ".atime_ns, " x ".mtime_s, " x          \
	".mtime_ns, " x ".ctime_s, " x ".ctime_ns, " x ".btime_s, " x ".btime_ns"

/* a directory, its entry by name and the inode the entry names (entry_get) */
#define ENTRY_GET                                                                                   \
	"SELECT " INODE_COLS_OF("p") ", d.ino, d.type, d.cookie, " INODE_COLS_OF("c") " FROM inodes p " \
	"LEFT JOIN dirents d ON d.parent = p.ino AND d.name = ? LEFT JOIN inodes c ON c.ino = d.ino "    \
	"WHERE p.ino = ?"

#define INODE_UPSERT                                                                            \
	"ON DUPLICATE KEY UPDATE mode=VALUES(mode), nlink=VALUES(nlink), uid=VALUES(uid), "     \
	"gid=VALUES(gid), rdev=VALUES(rdev), size=VALUES(size), version=VALUES(version), "       \
	"parent=VALUES(parent), next_cookie=VALUES(next_cookie), flags=VALUES(flags), "          \
	"atime_s=VALUES(atime_s), atime_ns=VALUES(atime_ns), mtime_s=VALUES(mtime_s), "          \
	"mtime_ns=VALUES(mtime_ns), ctime_s=VALUES(ctime_s), ctime_ns=VALUES(ctime_ns), "        \
	"btime_s=VALUES(btime_s), btime_ns=VALUES(btime_ns)"

/* the rows of table (alias a) whose session is gone (see SESSION_DEAD_S) */
#define REAP_GONE(table, a)                                                                \
	"DELETE " a " FROM " table " " a " LEFT JOIN sessions s ON s.id = " a ".session " \
	"WHERE s.id IS NULL OR s.heartbeat_ns < ?"

static const char *const sql[S_COUNT] = {
	[S_INODE_GET] = "SELECT ino, " INODE_COLS " FROM inodes WHERE ino = ?",
	[S_INODE_GET_LOCK] = "SELECT ino, " INODE_COLS " FROM inodes WHERE ino = ? FOR UPDATE",
	/* the inode, locked, and how many live mounts other than this one
	 * have it open: the inode is read first (the outer side of the
	 * joins), so the holds are read once its lock is granted, by a
	 * locking read, which sees the latest commit (see my_hold) */
	[S_INODE_GET_HELD] = "SELECT " INODE_COLS_OF("i") ", COUNT(s.id) FROM inodes i "
			     "LEFT JOIN holds h ON h.ino = i.ino AND h.session <> ? "
			     "LEFT JOIN sessions s ON s.id = h.session AND s.heartbeat_ns >= ? "
			     "WHERE i.ino = ? GROUP BY i.ino FOR UPDATE",
	[S_INODE_SCAN] = "SELECT ino, " INODE_COLS " FROM inodes WHERE ino >= ? ORDER BY ino LIMIT ?",
	[S_DIRENT_GET] = "SELECT ino, type, cookie FROM dirents WHERE parent = ? AND name = ?",
	[S_ENTRY_GET] = ENTRY_GET,
	[S_ENTRY_GET_LOCK] = ENTRY_GET " FOR UPDATE",
	[S_NAMES_OF] = "SELECT parent, name FROM dirents WHERE ino = ? ORDER BY parent, name",
	[S_DIR_LIST] = "SELECT name, ino, type, cookie FROM dirents WHERE parent = ? AND cookie >= ? "
		       "ORDER BY cookie LIMIT ?",
	[S_DIRENT_SCAN] = "SELECT parent, name, ino, type, cookie FROM dirents "
			  "WHERE parent > ? OR (parent = ? AND name >= ?) ORDER BY parent, name LIMIT ?",
	[S_NAMES_SCAN] = "SELECT ino, parent, name FROM dirents WHERE ino > ? OR (ino = ? AND "
			 "(parent > ? OR (parent = ? AND name >= ?))) ORDER BY ino, parent, name LIMIT ?",
	[S_XATTR_GET] = "SELECT value FROM xattrs WHERE ino = ? AND name = ?",
	[S_XATTR_LIST] = "SELECT name FROM xattrs WHERE ino = ? ORDER BY name",
	[S_XATTR_SCAN] = "SELECT ino, name, value FROM xattrs WHERE ino > ? OR (ino = ? AND name >= ?) "
			 "ORDER BY ino, name LIMIT ?",
	[S_INLINE_GET] = "SELECT data FROM inline_data WHERE ino = ?",
	[S_INLINE_SCAN] = "SELECT ino, data FROM inline_data WHERE ino >= ? ORDER BY ino LIMIT ?",
	[S_CHUNK_GET] = "SELECT data FROM chunks WHERE ino = ? AND idx = ?",
	[S_CHUNK_PUT] = "INSERT INTO chunks (ino, idx, data) VALUES (?,?,?) ON DUPLICATE KEY UPDATE data=VALUES(data)",
	[S_CHUNK_DEL] = "DELETE FROM chunks WHERE ino = ? AND idx = ?",
	[S_CHUNK_LIST] = "SELECT idx FROM chunks WHERE ino = ? AND idx >= ? ORDER BY idx LIMIT ?",
	[S_CHUNK_SCAN] = "SELECT ino, idx, data FROM chunks WHERE ino > ? OR (ino = ? AND idx >= ?) "
			 "ORDER BY ino, idx LIMIT ?",
	/* the orphans of this session, of sessions that are gone, and those
	 * no live mount has open (the reclaim checks each again) */
	[S_ORPHAN_LIST] = "SELECT o.ino FROM orphans o LEFT JOIN sessions s ON s.id = o.session "
			  "WHERE o.session = ? OR s.id IS NULL OR s.heartbeat_ns < ? OR NOT EXISTS "
			  "(SELECT 1 FROM holds h JOIN sessions hs ON hs.id = h.session "
			  "WHERE h.ino = o.ino AND hs.heartbeat_ns >= ?) ORDER BY o.ino",
	[S_PROV_GET] = "SELECT v FROM prov WHERE k = ?",
	[S_PROV_GET_LOCK] = "SELECT v FROM prov WHERE k = ? FOR UPDATE",
	[S_PROV_SCAN] = "SELECT k, v FROM prov WHERE k >= ? AND k < ? ORDER BY k LIMIT ?",
	[S_PROV_LAST] = "SELECT k, v FROM prov WHERE k >= ? AND k < ? ORDER BY k DESC LIMIT ?",
	[S_LOG_READ] = "SELECT seq, rec FROM changelog WHERE seq >= ? ORDER BY seq LIMIT ?",
	[S_LOG_BOUNDS] = "SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM changelog",
	[S_LOG_COUNT] = "SELECT COUNT(*) FROM changelog WHERE seq > ? AND seq <= ?",
	[S_LOCK_GET] = "SELECT name FROM locks WHERE name = ? FOR UPDATE",
	[S_LOCK_PUT] = "INSERT INTO locks (name) VALUES (?)",
	[S_INO_RESERVE] = "UPDATE counters SET value = LAST_INSERT_ID(value + ?) WHERE name = 'inohi'",
	[S_INO_RAISE] = "UPDATE counters SET value = GREATEST(value, ?) WHERE name = 'inohi'",
	[S_INO_FLOOR] = "SELECT value FROM counters WHERE name = 'inohi'",
	/* the mounts alive now, other than this one (see SESSION_DEAD_S) */
	[S_WRITERS] = "SELECT COUNT(*) FROM sessions WHERE id <> ? AND heartbeat_ns >= ?",
	[S_SUPER_GET] = "SELECT format_version, uuid, inline_threshold, chunk_size, created_ns FROM super WHERE id = 1",
	[S_SUPER_PUT] = "INSERT INTO super (id, format_version, uuid, inline_threshold, chunk_size, created_ns) "
			"VALUES (1,?,?,?,?,?) ON DUPLICATE KEY UPDATE format_version=VALUES(format_version), "
			"uuid=VALUES(uuid), inline_threshold=VALUES(inline_threshold), "
			"chunk_size=VALUES(chunk_size), created_ns=VALUES(created_ns)",
	/* with whether the holder's mount is alive (see SESSION_DEAD_S) */
	[S_PLOCK_LIST] = "SELECT l.session, l.kind, l.owner, l.first_byte, l.last_byte, l.type, l.pid, "
			 "s.id IS NOT NULL AND s.heartbeat_ns >= ? FROM plocks l "
			 "LEFT JOIN sessions s ON s.id = l.session WHERE l.ino = ?",
	[S_PLOCK_PUT] = "INSERT INTO plocks (ino, session, kind, owner, first_byte, last_byte, type, pid) "
			"VALUES (?,?,?,?,?,?,?,?)",
	[S_PLOCK_DEL] = "DELETE FROM plocks WHERE ino = ? AND session = ? AND kind = ? AND owner = ?",
	[S_SESSION_PUT] = "INSERT INTO sessions (id, host, pid, heartbeat_ns) VALUES (?,?,?,?) "
			  "ON DUPLICATE KEY UPDATE heartbeat_ns=VALUES(heartbeat_ns)",
	[S_SESSION_DEL] = "DELETE FROM sessions WHERE id = ?",
	[S_MARKS_DEL] = "DELETE FROM commit_marks WHERE session = ?",
	[S_MARKS_REAP] = REAP_GONE("commit_marks", "m"),
	[S_MARK_GET] = "SELECT n FROM commit_marks WHERE conn = ? LOCK IN SHARE MODE",
	[S_HOLDS_DEL] = "DELETE FROM holds WHERE session = ?",
	[S_HOLDS_REAP] = REAP_GONE("holds", "h"),
	/* a transaction's deferred writes, and its commit (see apply_proc) */
	[S_APPLY] = "CALL " APPLY_PROC "(?, ?, ?, ?, ?)",
};

/* file locks (locks.h); schema 2 added it */
#define PLOCKS_TABLE                                                                                       \
	"CREATE TABLE IF NOT EXISTS plocks (ino BIGINT UNSIGNED NOT NULL, session BIGINT UNSIGNED NOT NULL, " \
	"kind TINYINT UNSIGNED NOT NULL, owner BIGINT UNSIGNED NOT NULL, first_byte BIGINT UNSIGNED NOT NULL, " \
	"last_byte BIGINT UNSIGNED NOT NULL, type TINYINT UNSIGNED NOT NULL, pid INT UNSIGNED NOT NULL, "      \
	"PRIMARY KEY (ino, session, kind, owner, first_byte)) ENGINE=%s"

/* the last transaction each connection committed through APPLY_PROC, for
 * telling after a connection was lost during its commit whether it
 * committed; schema 3 added it */
#define MARKS_TABLE                                                                               \
	"CREATE TABLE IF NOT EXISTS commit_marks (conn BIGINT UNSIGNED PRIMARY KEY, "                  \
	"session BIGINT UNSIGNED NOT NULL, n BIGINT UNSIGNED NOT NULL, KEY by_session (session)) ENGINE=%s"

/* the files each mount has open, so that a file whose last name another
 * mount removes stays until every mount has closed it; schema 4 added it */
#define HOLDS_TABLE                                                                                     \
	"CREATE TABLE IF NOT EXISTS holds (ino BIGINT UNSIGNED NOT NULL, session BIGINT UNSIGNED NOT NULL, " \
	"PRIMARY KEY (ino, session), KEY by_session (session)) ENGINE=%s"

/*
 * A write transaction's statement group, in one round trip. Writes by key
 * (inodes, entries, xattrs, inline data, orphans, provenance, open files)
 * are kept by the client until the transaction reads again or commits, the
 * last write of each key winning; then this procedure applies them, each
 * table's deletes and then its upserts as one set-based statement over a
 * JSON array (JSON_TABLE), appends the changelog records in their order,
 * one INSERT each, and, with a commit mark (mc), records the mark and
 * commits: an operation's writes and its commit are one prepared CALL.
 * Integers travel as JSON strings (exact to 2^64), bytes as base64. m tells
 * which arrays are there: bit 2k for the deletes of kind k, 2k+1 for its
 * upserts (enum wkind).
 */
#define JT(sec, cols) " FROM JSON_TABLE(j, '$." sec "[*]' COLUMNS (" cols ")) t"
#define JU(n, i) n " BIGINT UNSIGNED PATH '$[" #i "]'"
#define JI(n, i) n " BIGINT PATH '$[" #i "]'"
#define JB(n, i) n " LONGTEXT PATH '$[" #i "]'"
#define JDEL(bit, table, sec, cols, on)                                                              \
	"IF m & " bit " THEN DELETE x FROM JSON_TABLE(j, '$." sec "[*]' COLUMNS (" cols ")) t "      \
	"STRAIGHT_JOIN " table " x ON " on "; END IF; "
static const char apply_proc[] =
	"CREATE PROCEDURE " APPLY_PROC "(IN j LONGTEXT, IN m INT UNSIGNED, IN sess BIGINT UNSIGNED, "
	"IN mc BIGINT UNSIGNED, IN mn BIGINT UNSIGNED) MODIFIES SQL DATA SQL SECURITY INVOKER BEGIN "
	"DECLARE i, n INT UNSIGNED DEFAULT 0; "
	JDEL("1", "inodes", "d0", JU("a", 0), "x.ino = t.a")
	"IF m & 2 THEN INSERT INTO inodes (ino, " INODE_COLS ") "
	"SELECT a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18"
	JT("p0", JU("a0", 0) ", " JU("a1", 1) ", " JU("a2", 2) ", " JU("a3", 3) ", " JU("a4", 4) ", "
		 JU("a5", 5) ", " JU("a6", 6) ", " JU("a7", 7) ", " JU("a8", 8) ", " JU("a9", 9) ", "
		 JU("a10", 10) ", " JI("a11", 11) ", " JU("a12", 12) ", " JI("a13", 13) ", "
		 JU("a14", 14) ", " JI("a15", 15) ", " JU("a16", 16) ", " JI("a17", 17) ", " JU("a18", 18))
	" " INODE_UPSERT "; END IF; "
	JDEL("4", "dirents", "d1", JU("a", 0) ", " JB("b", 1), "x.parent = t.a AND x.name = FROM_BASE64(t.b)")
	"IF m & 8 THEN INSERT INTO dirents (parent, name, ino, type, cookie) "
	"SELECT a, FROM_BASE64(b), c, d, e"
	JT("p1", JU("a", 0) ", " JB("b", 1) ", " JU("c", 2) ", " JU("d", 3) ", " JU("e", 4))
	" ON DUPLICATE KEY UPDATE ino=VALUES(ino), type=VALUES(type), cookie=VALUES(cookie); END IF; "
	JDEL("16", "xattrs", "d2", JU("a", 0) ", " JB("b", 1), "x.ino = t.a AND x.name = FROM_BASE64(t.b)")
	"IF m & 32 THEN INSERT INTO xattrs (ino, name, value) SELECT a, FROM_BASE64(b), FROM_BASE64(c)"
	JT("p2", JU("a", 0) ", " JB("b", 1) ", " JB("c", 2))
	" ON DUPLICATE KEY UPDATE value=VALUES(value); END IF; "
	JDEL("64", "inline_data", "d3", JU("a", 0), "x.ino = t.a")
	"IF m & 128 THEN INSERT INTO inline_data (ino, data) SELECT a, FROM_BASE64(b)"
	JT("p3", JU("a", 0) ", " JB("b", 1)) " ON DUPLICATE KEY UPDATE data=VALUES(data); END IF; "
	JDEL("256", "orphans", "d4", JU("a", 0), "x.ino = t.a")
	"IF m & 512 THEN INSERT INTO orphans (ino, session) SELECT a, b"
	JT("p4", JU("a", 0) ", " JU("b", 1)) " ON DUPLICATE KEY UPDATE session=VALUES(session); END IF; "
	JDEL("1024", "prov", "d5", JB("a", 0), "x.k = FROM_BASE64(t.a)")
	"IF m & 2048 THEN INSERT INTO prov (k, v) SELECT FROM_BASE64(a), FROM_BASE64(b)"
	JT("p5", JB("a", 0) ", " JB("b", 1)) " ON DUPLICATE KEY UPDATE v=VALUES(v); END IF; "
	JDEL("16384", "holds", "d7", JU("a", 0) ", " JU("b", 1), "x.ino = t.a AND x.session = t.b")
	"IF m & 32768 THEN INSERT INTO holds (ino, session) SELECT a, b"
	JT("p7", JU("a", 0) ", " JU("b", 1)) " ON DUPLICATE KEY UPDATE session=VALUES(session); END IF; "
	/* one row per INSERT: a multi-row INSERT ... SELECT reserves
	 * AUTO_INCREMENT ids in blocks and leaves the unused ones as holes */
	"IF m & 8192 THEN SET n = JSON_LENGTH(j, '$.p6'); WHILE i < n DO "
	"INSERT INTO changelog (rec) VALUES (FROM_BASE64(JSON_UNQUOTE(JSON_EXTRACT(j, CONCAT('$.p6[', i, '][0]'))))); "
	"SET i = i + 1; END WHILE; END IF; "
	"IF mc <> 0 THEN INSERT INTO commit_marks (conn, session, n) VALUES (mc, sess, mn) "
	"ON DUPLICATE KEY UPDATE n = VALUES(n); COMMIT; END IF; "
	"END";

/* Created by format, in this order; %s is the engine. */
static const char *const schema[] = {
	"CREATE TABLE super (id TINYINT UNSIGNED PRIMARY KEY, format_version INT UNSIGNED NOT NULL, "
	"uuid BINARY(16) NOT NULL, inline_threshold INT UNSIGNED NOT NULL, chunk_size INT UNSIGNED NOT NULL, "
	"created_ns BIGINT NOT NULL) ENGINE=%s",
	"CREATE TABLE counters (name VARBINARY(32) PRIMARY KEY, value BIGINT UNSIGNED NOT NULL) ENGINE=%s",
	"CREATE TABLE locks (name VARBINARY(64) PRIMARY KEY) ENGINE=%s",
	"CREATE TABLE sessions (id BIGINT UNSIGNED PRIMARY KEY, host VARBINARY(255) NOT NULL, "
	"pid INT UNSIGNED NOT NULL, heartbeat_ns BIGINT NOT NULL) ENGINE=%s",
	"CREATE TABLE inodes (ino BIGINT UNSIGNED PRIMARY KEY, mode INT UNSIGNED NOT NULL, "
	"nlink INT UNSIGNED NOT NULL, uid INT UNSIGNED NOT NULL, gid INT UNSIGNED NOT NULL, "
	"rdev BIGINT UNSIGNED NOT NULL, size BIGINT UNSIGNED NOT NULL, version BIGINT UNSIGNED NOT NULL, "
	"parent BIGINT UNSIGNED NOT NULL, next_cookie BIGINT UNSIGNED NOT NULL, flags INT UNSIGNED NOT NULL, "
	"atime_s BIGINT NOT NULL, atime_ns INT UNSIGNED NOT NULL, mtime_s BIGINT NOT NULL, "
	"mtime_ns INT UNSIGNED NOT NULL, ctime_s BIGINT NOT NULL, ctime_ns INT UNSIGNED NOT NULL, "
	"btime_s BIGINT NOT NULL, btime_ns INT UNSIGNED NOT NULL) ENGINE=%s",
	"CREATE TABLE dirents (parent BIGINT UNSIGNED NOT NULL, name VARBINARY(255) NOT NULL, "
	"ino BIGINT UNSIGNED NOT NULL, type INT UNSIGNED NOT NULL, cookie BIGINT UNSIGNED NOT NULL, "
	"PRIMARY KEY (parent, name), UNIQUE KEY by_cookie (parent, cookie), KEY by_ino (ino, parent, name)) ENGINE=%s",
	"CREATE TABLE xattrs (ino BIGINT UNSIGNED NOT NULL, name VARBINARY(255) NOT NULL, "
	"value MEDIUMBLOB NOT NULL, PRIMARY KEY (ino, name)) ENGINE=%s",
	"CREATE TABLE inline_data (ino BIGINT UNSIGNED PRIMARY KEY, data MEDIUMBLOB NOT NULL) ENGINE=%s",
	"CREATE TABLE chunks (ino BIGINT UNSIGNED NOT NULL, idx BIGINT UNSIGNED NOT NULL, "
	"data LONGBLOB NOT NULL, PRIMARY KEY (ino, idx)) ENGINE=%s",
	"CREATE TABLE orphans (ino BIGINT UNSIGNED PRIMARY KEY, session BIGINT UNSIGNED NOT NULL) ENGINE=%s",
	"CREATE TABLE prov (k VARBINARY(64) PRIMARY KEY, v MEDIUMBLOB NOT NULL) ENGINE=%s",
	"CREATE TABLE changelog (seq BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, rec MEDIUMBLOB NOT NULL) ENGINE=%s",
	PLOCKS_TABLE,
	MARKS_TABLE,
	HOLDS_TABLE,
};

static const char *const tables[] = {
	"super", "counters", "locks", "sessions", "inodes", "dirents",
	"xattrs", "inline_data", "chunks", "orphans", "prov", "changelog", "plocks", "commit_marks", "holds",
};

/* ---------------------------------------------------------------- types */

struct my_conn {
	MYSQL *m;
	MYSQL_STMT *st[S_COUNT];
	int host;
	bool causal; /* wsrep_sync_wait is on for the session */
	uint64_t mark_id, mark_n; /* commit_marks: this connection's row and last mark */
};

struct my_host {
	char *name;
	unsigned port;
};

struct my_store {
	struct store base;
	char *user, *password, *db, *engine;
	char *ssl_ca, *ssl_cert, *ssl_key;
	bool tls, tls_verify;
	unsigned connect_wait_s;
	bool causal_reads; /* causal_reads= (Galera's wsrep_sync_wait) */
	struct my_host hosts[MAX_HOSTS];
	int nhosts;
	_Atomic int cur_host; /* where new connections go first */
	bool readonly;

	pthread_mutex_t pool_lock;
	struct my_conn *idle[POOL_MAX];
	int nidle;

	pthread_mutex_t ino_lock;
	uint64_t next_ino, ino_hi;

	uint64_t session;
	pthread_t heartbeat;
	bool heartbeat_running;
	pthread_mutex_t hb_lock;
	pthread_cond_t hb_cond;
	bool stopping;

	_Atomic uint64_t statements, retries, failovers;
	_Atomic int64_t statfs_ns;
	_Atomic uint64_t used_bytes, used_inodes;
};

/* The kinds of deferred writes (see apply_proc). */
enum wkind { W_INODE, W_DIRENT, W_XATTR, W_INLINE, W_ORPHAN, W_PROV, W_LOG, W_HOLD, W_KINDS };

struct wop {
	enum wkind kind;
	bool del;
	unsigned char *key; /* what the write replaces (none for W_LOG) */
	size_t klen;
	char *json; /* its row of the JSON array */
	size_t jlen;
};

struct my_txn {
	struct store_txn base;
	struct my_conn *c;
	bool write;
	bool broken; /* the connection is unusable: close it, do not pool it */
	bool ran; /* a statement went to the server */
	bool wrote; /* a write statement went to the server (run without out) */
	bool unmarked; /* commit without a commit mark (see end_session) */
	struct wop *ops; /* deferred writes, in the order they were made */
	size_t nops, cap, bytes;
};

static struct my_store *MS(struct store *s)
{
	return (struct my_store *)s;
}

static struct my_txn *MT(struct store_txn *t)
{
	return (struct my_txn *)t;
}

/* Sessions that beat at or after this time are alive (SESSION_DEAD_S). */
static int64_t live_since(void)
{
	return mfs_now_ns() - SESSION_DEAD_S * 1000000000LL;
}

/* ---------------------------------------------------------------- errors */

static void conn_close(struct my_conn *c);

static bool conn_error(unsigned e)
{
	switch (e) {
	case CR_SERVER_GONE_ERROR: /* 2006 */
	case CR_SERVER_LOST: /* 2013 */
	case CR_CONNECTION_ERROR: /* 2002 */
	case CR_CONN_HOST_ERROR: /* 2003 */
	case CR_SERVER_LOST_EXTENDED: /* 2055 */
	case CR_COMMANDS_OUT_OF_SYNC: /* 2014: the connection's state is unknown */
	case ER_UNKNOWN_COM_ERROR: /* 1047: a Galera node that is not ready */
	case ER_CONNECTION_KILLED: /* 1927 */
	case ER_SERVER_SHUTDOWN: /* 1053 */
	case 1152: /* ER_ABORTING_CONNECTION */
		return true;
	default:
		return false;
	}
}

/* Maps a server or client error to an errno; logs what is not ordinary. */
static int map_error(struct my_txn *t, unsigned e, const char *msg, const char *what)
{
	struct my_store *s = MS(t->base.store);
	switch (e) {
	case 0:
		return 0;
	case ER_LOCK_DEADLOCK: /* 1213, also Galera's certification conflict */
	case ER_LOCK_WAIT_TIMEOUT: /* 1205 */
	case ER_DUP_ENTRY: /* 1062: two transactions created the same row */
	case 1020: /* ER_CHECKREAD: record changed since last read */
		s->retries++;
		return MFS_ERETRY;
	/* 1180: Galera could not replicate the write set at COMMIT ("Not
	 * connected to Primary Component"): the node was between two views of
	 * the cluster, as at every change of its membership */
	case ER_ERROR_DURING_COMMIT:
		s->retries++;
		log_warn("mysql %s on %s:%u: %s; running it again", what, s->hosts[t->c->host].name,
			 s->hosts[t->c->host].port, msg);
		return MFS_ERETRY;
	case ER_RECORD_FILE_FULL: /* 1114 */
	case ER_DISK_FULL: /* 1021 */
		log_error("mysql %s: %s", what, msg);
		return -ENOSPC;
	case ER_OPTION_PREVENTS_STATEMENT: /* 1290: read-only server */
		log_error("mysql %s: %s", what, msg);
		return -EROFS;
	}
	if (conn_error(e)) {
		t->broken = true;
		s->retries++;
		/* the pooled connections went to the same server: likely dead too */
		pthread_mutex_lock(&s->pool_lock);
		int n = s->nidle;
		struct my_conn *idle[POOL_MAX];
		memcpy(idle, s->idle, sizeof idle);
		s->nidle = 0;
		pthread_mutex_unlock(&s->pool_lock);
		for (int i = 0; i < n; i++)
			conn_close(idle[i]);
		int h = t->c ? t->c->host : s->cur_host;
		int next = (h + 1) % s->nhosts;
		if (atomic_compare_exchange_strong(&s->cur_host, &h, next) && s->nhosts > 1) {
			s->failovers++;
			log_warn("mysql %s on %s:%u: %s; going on with %s:%u", what, s->hosts[h].name,
				 s->hosts[h].port, msg, s->hosts[next].name, s->hosts[next].port);
		}
		return MFS_ERETRY;
	}
	log_error("mysql %s: error %u: %s", what, e, msg);
	return -EIO;
}

static int stmt_error(struct my_txn *t, MYSQL_STMT *st, const char *what)
{
	return map_error(t, mysql_stmt_errno(st), mysql_stmt_error(st), what);
}

static int conn_query_error(struct my_txn *t, const char *what)
{
	return map_error(t, mysql_errno(t->c->m), mysql_error(t->c->m), what);
}

/* ---------------------------------------------------------------- connections */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
	mysql_library_init(0, NULL, NULL);
}

static void conn_close(struct my_conn *c)
{
	if (!c)
		return;
	for (int i = 0; i < S_COUNT; i++)
		if (c->st[i])
			mysql_stmt_close(c->st[i]);
	if (c->m)
		mysql_close(c->m);
	free(c);
}

/* One attempt at host h. with_db: USE the volume's database. */
static int conn_open_host(struct my_store *s, int h, bool with_db, struct my_conn **out, char *err, size_t errlen)
{
	struct my_conn *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	c->host = h;
	RAND_bytes((unsigned char *)&c->mark_id, sizeof c->mark_id);
	c->mark_id = (c->mark_id >> 1) | 1; /* never 0, which means no mark */
	c->m = mysql_init(NULL);
	if (!c->m) {
		free(c);
		return -ENOMEM;
	}
	unsigned timeout = 5, rw_timeout = 60;
	my_bool off = 0;
	unsigned long packet = 1ul << 30;
	mysql_options(c->m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(c->m, MYSQL_OPT_READ_TIMEOUT, &rw_timeout);
	mysql_options(c->m, MYSQL_OPT_WRITE_TIMEOUT, &rw_timeout);
	mysql_options(c->m, MYSQL_OPT_RECONNECT, &off);
	mysql_options(c->m, MYSQL_OPT_MAX_ALLOWED_PACKET, &packet);
	mysql_options(c->m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (s->ssl_ca)
		mysql_optionsv(c->m, MYSQL_OPT_SSL_CA, s->ssl_ca);
	if (s->ssl_cert)
		mysql_optionsv(c->m, MYSQL_OPT_SSL_CERT, s->ssl_cert);
	if (s->ssl_key)
		mysql_optionsv(c->m, MYSQL_OPT_SSL_KEY, s->ssl_key);
	if (s->tls) {
		my_bool on = 1;
		mysql_optionsv(c->m, MYSQL_OPT_SSL_ENFORCE, &on);
		my_bool verify = s->tls_verify;
		mysql_optionsv(c->m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
	}
	if (!mysql_real_connect(c->m, s->hosts[h].name, s->user, s->password, with_db ? s->db : NULL,
				s->hosts[h].port, NULL, 0)) {
		snprintf(err, errlen, "%s:%u: %s", s->hosts[h].name, s->hosts[h].port, mysql_error(c->m));
		unsigned e = mysql_errno(c->m);
		conn_close(c);
		/* a refused login or a missing database will not mend by waiting */
		if (e == ER_ACCESS_DENIED_ERROR || e == 1044 /* ER_DBACCESS_DENIED_ERROR */)
			return -EACCES;
		if (e == ER_BAD_DB_ERROR)
			return -ENOENT;
		return -ECONNREFUSED;
	}
	/* READ COMMITTED is all NDB offers, and all the namespace relies on;
	 * autocommit off, so that the first statement opens the transaction
	 * without a round trip of its own. A short lock wait: a waiter that
	 * times out runs its operation again. */
	static const char *const init[] = {
		"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
		"SET autocommit = 0",
	};
	for (size_t i = 0; i < MFS_ARRAY_LEN(init); i++)
		if (mysql_query(c->m, init[i])) {
			snprintf(err, errlen, "%s:%u: %s", s->hosts[h].name, s->hosts[h].port, mysql_error(c->m));
			conn_close(c);
			return -ECONNREFUSED;
		}
	char q[64];
	snprintf(q, sizeof q, "SET SESSION innodb_lock_wait_timeout = %d", LOCK_WAIT_S);
	if (mysql_query(c->m, q)) /* not every engine has it */
		(void)0;
	/* Galera applies another node's write sets after they are certified:
	 * a read waits until this node has applied everything the cluster
	 * committed before it, so a file closed through one node is seen
	 * whole through another (close-to-open), as on one server. Elsewhere
	 * the variable is missing or does nothing. */
	if (s->causal_reads && !mysql_query(c->m, "SET SESSION wsrep_sync_wait = 1"))
		c->causal = true;
	*out = c;
	return 0;
}

/* A connection to some host, starting with the current one, waiting up to
 * connect_wait for one to answer. */
static int conn_open(struct my_store *s, bool with_db, struct my_conn **out, char *err, size_t errlen)
{
	int64_t deadline = mfs_now_ns() + (int64_t)s->connect_wait_s * 1000000000LL;
	unsigned backoff = 50000;
	for (;;) {
		int start = s->cur_host;
		for (int i = 0; i < s->nhosts; i++) {
			int h = (start + i) % s->nhosts;
			int rc = conn_open_host(s, h, with_db, out, err, errlen);
			if (rc == 0) {
				if (h != start) {
					s->cur_host = h;
					s->failovers++;
				}
				return 0;
			}
			if (rc != -ECONNREFUSED)
				return rc;
		}
		if (mfs_now_ns() >= deadline)
			return -EIO;
		mfs_sleep_us(backoff);
		if (backoff < 1000000)
			backoff *= 2;
	}
}

static int conn_get(struct my_store *s, struct my_conn **out)
{
	pthread_mutex_lock(&s->pool_lock);
	struct my_conn *c = s->nidle ? s->idle[--s->nidle] : NULL;
	pthread_mutex_unlock(&s->pool_lock);
	if (c) {
		*out = c;
		return 0;
	}
	char err[512];
	int rc = conn_open(s, true, out, err, sizeof err);
	if (rc) {
		log_error("%s: no server answers: %s", s->base.spec, err);
		return -EIO;
	}
	return 0;
}

static void conn_put(struct my_store *s, struct my_conn *c, bool broken)
{
	if (!broken) {
		pthread_mutex_lock(&s->pool_lock);
		if (s->nidle < POOL_MAX) {
			s->idle[s->nidle++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&s->pool_lock);
	}
	conn_close(c);
}

/* ---------------------------------------------------------------- binding */

static void bu(MYSQL_BIND *b, const uint64_t *v)
{
	memset(b, 0, sizeof *b);
	b->buffer_type = MYSQL_TYPE_LONGLONG;
	b->buffer = (void *)v;
	b->is_unsigned = 1;
}

static void bi(MYSQL_BIND *b, const int64_t *v)
{
	memset(b, 0, sizeof *b);
	b->buffer_type = MYSQL_TYPE_LONGLONG;
	b->buffer = (void *)v;
}

static void bb(MYSQL_BIND *b, const void *p, unsigned long *len)
{
	memset(b, 0, sizeof *b);
	b->buffer_type = MYSQL_TYPE_BLOB;
	b->buffer = (void *)(p ? p : "");
	b->buffer_length = *len;
	b->length = len;
}

/* One result row: integer columns in u, byte columns malloc'd in b. */
struct row {
	uint64_t u[MAXCOL];
	unsigned char *b[MAXCOL];
	unsigned long len[MAXCOL];
};

struct rows {
	struct row *r;
	size_t n, cap;
};

static void rows_free(struct rows *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		for (int j = 0; j < MAXCOL; j++)
			free(rs->r[i].b[j]);
	free(rs->r);
	memset(rs, 0, sizeof *rs);
}

static int stmt_get(struct my_txn *t, int sid, MYSQL_STMT **out)
{
	struct my_conn *c = t->c;
	if (!c->st[sid]) {
		MYSQL_STMT *st = mysql_stmt_init(c->m);
		if (!st)
			return -ENOMEM;
		if (mysql_stmt_prepare(st, sql[sid], strlen(sql[sid]))) {
			int rc = stmt_error(t, st, "prepare");
			mysql_stmt_close(st);
			return rc;
		}
		c->st[sid] = st;
	}
	*out = c->st[sid];
	return 0;
}

static int apply_writes(struct my_txn *t, bool commit);

/* Runs statement sid; with out, collects every row of its result. */
static int run(struct my_txn *t, int sid, MYSQL_BIND *params, struct rows *out)
{
	struct my_store *s = MS(t->base.store);
	if (t->broken)
		return MFS_ERETRY;
	int rc;
	/* a read sees the transaction's own writes */
	if (out && t->nops && (rc = apply_writes(t, false)))
		return rc;
	MYSQL_STMT *st = NULL;
	rc = stmt_get(t, sid, &st);
	if (rc)
		return rc;
	s->statements++;
	t->ran = true;
	if (!out)
		t->wrote = true;
	if ((params && mysql_stmt_bind_param(st, params)) || mysql_stmt_execute(st))
		return stmt_error(t, st, sql[sid]);
	if (!out)
		return 0;
	if (mysql_stmt_store_result(st)) {
		rc = stmt_error(t, st, "store result");
		return rc;
	}
	unsigned ncol = mysql_stmt_field_count(st);
	if (ncol > MAXCOL) {
		mysql_stmt_free_result(st);
		return -EIO;
	}
	MYSQL_RES *meta = mysql_stmt_result_metadata(st);
	MYSQL_FIELD *f = meta ? mysql_fetch_fields(meta) : NULL;
	MYSQL_BIND rb[MAXCOL];
	struct row cur;
	my_bool nulls[MAXCOL];
	memset(rb, 0, sizeof rb);
	memset(&cur, 0, sizeof cur);
	bool blob[MAXCOL];
	for (unsigned i = 0; i < ncol; i++) {
		enum enum_field_types ty = f ? f[i].type : MYSQL_TYPE_LONGLONG;
		blob[i] = ty == MYSQL_TYPE_BLOB || ty == MYSQL_TYPE_TINY_BLOB || ty == MYSQL_TYPE_MEDIUM_BLOB ||
			  ty == MYSQL_TYPE_LONG_BLOB || ty == MYSQL_TYPE_VAR_STRING || ty == MYSQL_TYPE_STRING ||
			  ty == MYSQL_TYPE_VARCHAR;
		rb[i].is_null = &nulls[i];
		rb[i].length = &cur.len[i];
		if (blob[i]) {
			rb[i].buffer_type = MYSQL_TYPE_BLOB;
		} else {
			rb[i].buffer_type = MYSQL_TYPE_LONGLONG;
			rb[i].buffer = &cur.u[i];
			rb[i].is_unsigned = f ? (f[i].flags & UNSIGNED_FLAG) != 0 : 1;
		}
	}
	if (meta)
		mysql_free_result(meta);
	if (mysql_stmt_bind_result(st, rb)) {
		rc = stmt_error(t, st, "bind result");
		mysql_stmt_free_result(st);
		return rc;
	}
	for (;;) {
		memset(cur.u, 0, sizeof cur.u);
		int fr = mysql_stmt_fetch(st);
		if (fr == MYSQL_NO_DATA)
			break;
		if (fr == 1) {
			rc = stmt_error(t, st, "fetch");
			break;
		}
		if (mfs_array_reserve(&out->r, &out->cap, out->n, sizeof *out->r)) {
			rc = -ENOMEM;
			break;
		}
		struct row *r = &out->r[out->n];
		memcpy(r->u, cur.u, sizeof r->u);
		memset(r->b, 0, sizeof r->b);
		memcpy(r->len, cur.len, sizeof r->len);
		out->n++;
		for (unsigned i = 0; i < ncol && !rc; i++) {
			if (!blob[i])
				continue;
			r->b[i] = malloc(r->len[i] + 1);
			if (!r->b[i]) {
				rc = -ENOMEM;
				break;
			}
			r->b[i][r->len[i]] = 0;
			if (r->len[i] == 0 || nulls[i])
				continue;
			MYSQL_BIND one;
			memset(&one, 0, sizeof one);
			one.buffer_type = MYSQL_TYPE_BLOB;
			one.buffer = r->b[i];
			one.buffer_length = r->len[i];
			if (mysql_stmt_fetch_column(st, &one, i, 0))
				rc = stmt_error(t, st, "fetch column");
		}
		if (rc)
			break;
	}
	mysql_stmt_free_result(st);
	if (rc)
		rows_free(out);
	return rc;
}

/* The one row of a lookup: 0, or -ENOENT when there is none. */
static int run_one(struct my_txn *t, int sid, MYSQL_BIND *params, struct row *out)
{
	struct rows rs = { 0 };
	int rc = run(t, sid, params, &rs);
	if (rc)
		return rc;
	if (rs.n == 0) {
		rows_free(&rs);
		return -ENOENT;
	}
	*out = rs.r[0];
	memset(rs.r[0].b, 0, sizeof rs.r[0].b); /* handed over */
	rows_free(&rs);
	return 0;
}

static void row_free(struct row *r)
{
	for (int j = 0; j < MAXCOL; j++)
		free(r->b[j]);
}

/* ---------------------------------------------------------------- deferred writes */

/* A growing string; oom once an allocation failed. */
struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

static bool sb_room(struct sbuf *b, size_t len)
{
	if (b->oom)
		return false;
	if (b->n + len + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->n + len + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void sb_add(struct sbuf *b, const char *s, size_t len)
{
	if (!sb_room(b, len))
		return;
	memcpy(b->p + b->n, s, len);
	b->n += len;
	b->p[b->n] = 0;
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* The separator before a row's next value. */
static void sb_sep(struct sbuf *b)
{
	sb_str(b, b->n ? "," : "[");
}

static void sb_u64(struct sbuf *b, uint64_t v)
{
	char t[32];
	sb_sep(b);
	sb_add(b, t, (size_t)snprintf(t, sizeof t, "\"%llu\"", (unsigned long long)v));
}

static void sb_i64(struct sbuf *b, int64_t v)
{
	char t[32];
	sb_sep(b);
	sb_add(b, t, (size_t)snprintf(t, sizeof t, "\"%lld\"", (long long)v));
}

static void sb_bytes(struct sbuf *b, const void *p, size_t len)
{
	sb_sep(b);
	size_t n = 4 * ((len + 2) / 3);
	if (!sb_room(b, n + 2))
		return;
	b->p[b->n++] = '"';
	EVP_EncodeBlock((unsigned char *)b->p + b->n, p, (int)len);
	b->n += n;
	b->p[b->n++] = '"';
	b->p[b->n] = 0;
}

static void ops_clear(struct my_txn *t)
{
	for (size_t i = 0; i < t->nops; i++) {
		free(t->ops[i].key);
		free(t->ops[i].json);
	}
	t->nops = 0;
	t->bytes = 0;
}

/* Whether a later write of the transaction replaces write i. */
static bool superseded(const struct my_txn *t, size_t i)
{
	const struct wop *o = &t->ops[i];
	for (size_t k = i + 1; k < t->nops; k++) {
		const struct wop *l = &t->ops[k];
		if (l->kind == o->kind && l->klen == o->klen && !memcmp(l->key, o->key, o->klen))
			return true;
	}
	return false;
}

/* Sends the deferred writes in one CALL (apply_proc); with commit, commits
 * the transaction in the same call. */
static int apply_writes(struct my_txn *t, bool commit)
{
	struct my_store *s = MS(t->base.store);
	struct sbuf j = { 0 };
	uint64_t mask = 0;
	sb_str(&j, "{");
	for (int kind = 0; kind < W_KINDS; kind++)
		for (int del = 1; del >= 0; del--) {
			bool open = false;
			for (size_t i = 0; i < t->nops; i++) {
				const struct wop *o = &t->ops[i];
				if ((int)o->kind != kind || o->del != (bool)del ||
				    (kind != W_LOG && superseded(t, i)))
					continue;
				if (!open) {
					char sec[16];
					sb_add(&j, sec, (size_t)snprintf(sec, sizeof sec, "%s\"%c%d\":[",
									 j.n > 1 ? "," : "", del ? 'd' : 'p', kind));
					mask |= 1ull << (2 * kind + !del);
					open = true;
				} else {
					sb_str(&j, ",");
				}
				sb_add(&j, o->json, o->jlen);
			}
			if (open)
				sb_str(&j, "]");
		}
	sb_str(&j, "}");
	ops_clear(t);
	if (j.oom) {
		free(j.p);
		return -ENOMEM;
	}
	uint64_t sess = s->session, mc = 0, mn = 0;
	if (commit) {
		mc = t->c->mark_id;
		mn = t->c->mark_n + 1;
	}
	unsigned long jl = j.n;
	MYSQL_BIND p[5];
	memset(p, 0, sizeof p);
	p[0].buffer_type = MYSQL_TYPE_STRING;
	p[0].buffer = j.p;
	p[0].buffer_length = jl;
	p[0].length = &jl;
	bu(&p[1], &mask);
	bu(&p[2], &sess);
	bu(&p[3], &mc);
	bu(&p[4], &mn);
	int rc = run(t, S_APPLY, p, NULL);
	free(j.p);
	if (rc == 0 && commit)
		t->c->mark_n = mn;
	return rc;
}

/* Keeps a write for the next flush (-EROFS in a read transaction). key:
 * the record it replaces, as the integer k (when with_k) followed by b.
 * row: its JSON row, taken over. */
static int defer(struct store_txn *tt, enum wkind kind, bool del, bool with_k, uint64_t k, const void *b,
		 size_t blen, struct sbuf *row)
{
	struct my_txn *t = MT(tt);
	int rc = 0;
	if (!t->write)
		rc = -EROFS;
	else if (t->broken)
		rc = MFS_ERETRY;
	else if (row->oom || mfs_array_reserve(&t->ops, &t->cap, t->nops, sizeof *t->ops))
		rc = -ENOMEM;
	size_t klen = (with_k ? 8 : 0) + blen;
	unsigned char *key = NULL;
	if (!rc && klen && !(key = malloc(klen)))
		rc = -ENOMEM;
	if (rc) {
		free(row->p);
		return rc;
	}
	if (with_k)
		put_be64(key, k);
	if (blen)
		memcpy(key + (with_k ? 8 : 0), b, blen);
	sb_str(row, "]");
	if (row->oom) {
		free(key);
		free(row->p);
		return -ENOMEM;
	}
	t->ops[t->nops++] = (struct wop){ .kind = kind, .del = del, .key = key, .klen = klen,
					  .json = row->p, .jlen = row->n };
	t->bytes += row->n + klen;
	if (t->nops >= DEFER_OPS || t->bytes >= DEFER_BYTES)
		return apply_writes(t, false);
	return 0;
}

/* A deferred delete by an integer key and bytes (b may be NULL). */
static int defer_del(struct store_txn *tt, enum wkind kind, uint64_t k, const void *b, size_t blen)
{
	struct sbuf row = { 0 };
	sb_u64(&row, k);
	if (b)
		sb_bytes(&row, b, blen);
	return defer(tt, kind, true, true, k, b, b ? blen : 0, &row);
}

/* ---------------------------------------------------------------- transactions */

static int txn_new(struct store *st, bool write, struct store_txn **out)
{
	struct my_store *s = MS(st);
	if (write && s->readonly)
		return -EROFS;
	struct my_txn *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	t->base.store = st;
	t->write = write;
	int rc = conn_get(s, &t->c);
	if (rc) {
		free(t);
		return rc;
	}
	*out = &t->base;
	return 0;
}

static int my_begin(struct store *st, struct store_txn **out)
{
	return txn_new(st, true, out);
}

static int my_begin_read(struct store *st, struct store_txn **out)
{
	return txn_new(st, false, out);
}

static void txn_end(struct my_txn *t)
{
	ops_clear(t);
	free(t->ops);
	conn_put(MS(t->base.store), t->c, t->broken);
	free(t);
}

static void my_abort(struct store_txn *tt)
{
	struct my_txn *t = MT(tt);
	/* a reader took no locks and wrote nothing: its next statement
	 * reads afresh under READ COMMITTED, no rollback needed */
	if (t->write && t->ran && !t->broken && mysql_rollback(t->c->m))
		t->broken = true;
	txn_end(t);
}

/* After a connection was lost during its commit (or Galera failed to
 * replicate it): did it commit? Its connection's commit mark tells: the
 * mark is written by the commit itself. A share lock waits for a commit
 * still under way on the server. */
static int commit_outcome(struct my_store *s, uint64_t mark_id, uint64_t mark_n)
{
	for (int attempt = 0; attempt < 10; attempt++) {
		struct store_txn *tt;
		int rc = my_begin(&s->base, &tt);
		if (rc)
			return rc;
		struct my_txn *t = MT(tt);
		/* on Galera, see every write set the cluster has certified */
		bool causal = t->c->causal;
		if (!causal && mysql_query(t->c->m, "SET SESSION wsrep_sync_wait = 1"))
			(void)mysql_errno(t->c->m);
		MYSQL_BIND p[1];
		bu(&p[0], &mark_id);
		struct row r;
		rc = run_one(t, S_MARK_GET, p, &r);
		if (!rc) {
			if (r.u[0] != mark_n)
				rc = -ENOENT;
			row_free(&r);
		}
		if (!causal && mysql_query(t->c->m, "SET SESSION wsrep_sync_wait = 0"))
			(void)mysql_errno(t->c->m);
		my_abort(tt);
		if (rc == 0)
			return 0; /* committed */
		if (rc == -ENOENT)
			return MFS_ERETRY; /* rolled back: run it again */
		if (rc != MFS_ERETRY)
			return rc;
		mfs_sleep_us(100000);
	}
	return -EIO;
}

static int my_commit(struct store_txn *tt)
{
	struct my_txn *t = MT(tt);
	struct my_store *s = MS(tt->store);
	if (!t->write) {
		txn_end(t);
		return 0;
	}
	if (t->broken) {
		txn_end(t);
		return MFS_ERETRY;
	}
	int rc = 0;
	if (t->unmarked && t->nops && (rc = apply_writes(t, false))) {
		if (!t->broken)
			mysql_rollback(t->c->m);
		txn_end(t);
		return rc;
	}
	if (!t->nops && (!t->wrote || t->unmarked)) {
		/* nothing written, the commit only ending the locking reads;
		 * or a commit that must leave no mark */
		if (t->ran) {
			s->statements++;
			if (mysql_commit(t->c->m))
				rc = conn_query_error(t, "commit");
		}
		txn_end(t);
		return rc;
	}
	uint64_t mark_id = t->c->mark_id, mark_n = t->c->mark_n + 1;
	rc = apply_writes(t, true);
	if (rc) {
		MYSQL_STMT *st = t->c->st[S_APPLY];
		unsigned e = st ? mysql_stmt_errno(st) : 0;
		/* 1180 too: whether the others ordered a write set this node
		 * failed to replicate is for them to tell */
		bool ambiguous = (conn_error(e) && e != ER_UNKNOWN_COM_ERROR) || e == ER_ERROR_DURING_COMMIT;
		if (!t->broken)
			mysql_rollback(t->c->m);
		txn_end(t);
		if (ambiguous)
			return commit_outcome(s, mark_id, mark_n);
		return rc;
	}
	txn_end(t);
	return 0;
}

static int my_lock_global(struct store_txn *tt, const char *what)
{
	struct my_txn *t = MT(tt);
	unsigned long len = strlen(what);
	if (len > 64)
		return -EINVAL;
	MYSQL_BIND p[1];
	bb(&p[0], what, &len);
	struct row r;
	int rc = run_one(t, S_LOCK_GET, p, &r);
	if (rc == 0) {
		row_free(&r);
		return 0;
	}
	if (rc != -ENOENT)
		return rc;
	/* two first lockers: one gets a duplicate key and runs again */
	return run(t, S_LOCK_PUT, p, NULL);
}

/* ---------------------------------------------------------------- inodes */

/* An inode from its 19 columns at u (INODE_COLS_OF). */
static void inode_from_cols(const uint64_t *u, struct inode_rec *in)
{
	in->ino = u[0];
	in->mode = (uint32_t)u[1];
	in->nlink = (uint32_t)u[2];
	in->uid = (uint32_t)u[3];
	in->gid = (uint32_t)u[4];
	in->rdev = u[5];
	in->size = u[6];
	in->version = u[7];
	in->parent = u[8];
	in->next_cookie = u[9];
	in->flags = (uint32_t)u[10];
	struct timespec *ts[] = { &in->atime, &in->mtime, &in->ctime, &in->btime };
	for (int i = 0; i < 4; i++) {
		ts[i]->tv_sec = (time_t)(int64_t)u[11 + 2 * i];
		ts[i]->tv_nsec = (long)u[12 + 2 * i];
	}
}

static void inode_from_row(const struct row *r, struct inode_rec *in)
{
	inode_from_cols(r->u, in);
}

static int my_inode_get(struct store_txn *tt, uint64_t ino, struct inode_rec *out, bool lock)
{
	MYSQL_BIND p[1];
	bu(&p[0], &ino);
	struct row r;
	int rc = run_one(MT(tt), lock ? S_INODE_GET_LOCK : S_INODE_GET, p, &r);
	if (rc)
		return rc;
	memset(out, 0, sizeof *out);
	inode_from_row(&r, out);
	row_free(&r);
	return 0;
}

static int my_inode_put(struct store_txn *tt, const struct inode_rec *in)
{
	uint64_t u[11] = { in->ino, in->mode, in->nlink, in->uid, in->gid, in->rdev, in->size,
			   in->version, in->parent, in->next_cookie, in->flags };
	const struct timespec *ts[4] = { &in->atime, &in->mtime, &in->ctime, &in->btime };
	struct sbuf row = { 0 };
	for (int i = 0; i < 11; i++)
		sb_u64(&row, u[i]);
	for (int i = 0; i < 4; i++) {
		sb_i64(&row, ts[i]->tv_sec);
		sb_u64(&row, (uint64_t)ts[i]->tv_nsec);
	}
	return defer(tt, W_INODE, false, true, in->ino, NULL, 0, &row);
}

/* A write whose parameters are n integers (at most 8). */
static int write_u64s(struct store_txn *tt, int sid, const uint64_t *v, int n)
{
	struct my_txn *t = MT(tt);
	if (!t->write)
		return -EROFS;
	MYSQL_BIND p[8];
	for (int i = 0; i < n; i++)
		bu(&p[i], &v[i]);
	return run(t, sid, p, NULL);
}

static int my_inode_del(struct store_txn *tt, uint64_t ino)
{
	return defer_del(tt, W_INODE, ino, NULL, 0);
}

/* ---------------------------------------------------------------- whole-store reads */

/* Runs one query of a scan in a read transaction of its own, again when
 * the connection was lost, so that a long scan survives a failover. */
static int read_batch(struct my_store *s, int sid, MYSQL_BIND *p, struct rows *out)
{
	unsigned backoff = 10000;
	for (int attempt = 0; attempt < 40; attempt++) {
		struct store_txn *tt;
		int rc = my_begin_read(&s->base, &tt);
		if (rc)
			return rc;
		rc = run(MT(tt), sid, p, out);
		my_abort(tt);
		if (rc != MFS_ERETRY)
			return rc;
		mfs_sleep_us(backoff);
		if (backoff < 1000000)
			backoff *= 2;
	}
	return -EIO;
}

/* Runs one statement in a write transaction of its own, retried whole. */
static int write_one(struct my_store *s, int sid, MYSQL_BIND *p, uint64_t *insert_id)
{
	unsigned backoff = 10000;
	for (int attempt = 0; attempt < 40; attempt++) {
		struct store_txn *tt;
		int rc = my_begin(&s->base, &tt);
		if (rc)
			return rc;
		rc = run(MT(tt), sid, p, NULL);
		if (!rc && insert_id)
			*insert_id = mysql_stmt_insert_id(MT(tt)->c->st[sid]);
		if (!rc)
			rc = my_commit(tt);
		else
			my_abort(tt);
		if (rc != MFS_ERETRY)
			return rc;
		mfs_sleep_us(backoff);
		if (backoff < 1000000)
			backoff *= 2;
	}
	return -EIO;
}

#define SCAN_BATCH 512
#define DATA_BATCH 16
/* room for the longest key a page goes on from: a name, and the NUL after it */
#define PAGE_KEY_MAX 256

/*
 * A query read page by page in key order. Its parameters, in the order of
 * the layout: 'a', 'b' the cursor's numbers, 'k' its key bytes, 'f' a fixed
 * number, 'h' fixed key bytes, 'l' the page size. The row function hands a
 * row on and moves the cursor past it.
 */
struct page {
	const char *layout;
	uint64_t a, b, fixed, lim;
	unsigned char key[PAGE_KEY_MAX + 1];
	unsigned long klen;
	const unsigned char *hi;
	unsigned long hilen;
};

/* the caller's callback, whichever kind the scan takes */
struct user_cb {
	union {
		inode_scan_cb inode;
		dirent_scan_cb dirent;
		names_scan_cb names;
		xattr_scan_cb xattr;
		data_scan_cb data;
		dir_list_cb dir;
		chunk_list_cb chunk;
		changelog_cb log;
		int (*prov)(void *arg, const void *key, size_t klen, const void *val, size_t len);
	} fn;
	void *arg;
	bool stopped; /* the callback asked to stop */
};

typedef int (*page_row_fn)(const struct user_cb *u, struct page *pg, const struct row *r);

/* the key just after a byte string: itself with a NUL appended */
static void page_key_after(struct page *pg, const unsigned char *k, unsigned long len)
{
	if (len > PAGE_KEY_MAX - 1)
		len = PAGE_KEY_MAX - 1;
	memcpy(pg->key, k, len);
	pg->key[len] = 0;
	pg->klen = len + 1;
}

/* In transaction t, or with t NULL each page in a read transaction of its
 * own (read_batch), so that a whole-store scan survives a failover. */
static int paged(struct my_store *s, struct store_txn *t, int sid, struct page *pg, page_row_fn fn,
		 struct user_cb *u)
{
	for (;;) {
		MYSQL_BIND p[8];
		size_t np = 0;
		for (const char *c = pg->layout; *c && np < MFS_ARRAY_LEN(p); c++, np++) {
			switch (*c) {
			case 'a':
				bu(&p[np], &pg->a);
				break;
			case 'b':
				bu(&p[np], &pg->b);
				break;
			case 'f':
				bu(&p[np], &pg->fixed);
				break;
			case 'l':
				bu(&p[np], &pg->lim);
				break;
			case 'k':
				bb(&p[np], pg->key, &pg->klen);
				break;
			case 'h':
				bb(&p[np], pg->hi, &pg->hilen);
				break;
			}
		}
		struct rows rs = { 0 };
		int rc = t ? run(MT(t), sid, p, &rs) : read_batch(s, sid, p, &rs);
		if (rc)
			return rc;
		for (size_t i = 0; i < rs.n && !rc; i++)
			rc = fn(u, pg, &rs.r[i]);
		size_t n = rs.n;
		rows_free(&rs);
		if (rc > 0)
			u->stopped = true;
		if (rc)
			return rc < 0 ? rc : 0;
		if (n < pg->lim)
			return 0;
	}
}

static int inode_scan_row(const struct user_cb *u, struct page *pg, const struct row *r)
{
	struct inode_rec in = { 0 };
	inode_from_row(r, &in);
	pg->a = in.ino + 1;
	return u->fn.inode(u->arg, in.ino, &in);
}

static int my_inode_scan(struct store *st, inode_scan_cb cb, void *arg)
{
	struct page pg = { .layout = "al", .lim = SCAN_BATCH };
	struct user_cb u = { .fn.inode = cb, .arg = arg };
	return paged(MS(st), NULL, S_INODE_SCAN, &pg, inode_scan_row, &u);
}

static int dirent_scan_row(const struct user_cb *u, struct page *pg, const struct row *r)
{
	struct dirent_rec d = { .ino = r->u[2], .type = (uint32_t)r->u[3], .cookie = r->u[4] };
	pg->a = r->u[0];
	page_key_after(pg, r->b[1], r->len[1]);
	return u->fn.dirent(u->arg, r->u[0], (const char *)r->b[1], r->len[1], &d);
}

static int my_dirent_scan(struct store *st, dirent_scan_cb cb, void *arg)
{
	struct page pg = { .layout = "aakl", .lim = SCAN_BATCH };
	struct user_cb u = { .fn.dirent = cb, .arg = arg };
	return paged(MS(st), NULL, S_DIRENT_SCAN, &pg, dirent_scan_row, &u);
}

static int names_scan_row(const struct user_cb *u, struct page *pg, const struct row *r)
{
	pg->a = r->u[0];
	pg->b = r->u[1];
	page_key_after(pg, r->b[2], r->len[2]);
	return u->fn.names(u->arg, r->u[0], r->u[1], (const char *)r->b[2], r->len[2]);
}

static int my_names_scan(struct store *st, names_scan_cb cb, void *arg)
{
	struct page pg = { .layout = "aabbkl", .lim = SCAN_BATCH };
	struct user_cb u = { .fn.names = cb, .arg = arg };
	return paged(MS(st), NULL, S_NAMES_SCAN, &pg, names_scan_row, &u);
}

static int xattr_scan_row(const struct user_cb *u, struct page *pg, const struct row *r)
{
	pg->a = r->u[0];
	page_key_after(pg, r->b[1], r->len[1]);
	return u->fn.xattr(u->arg, r->u[0], (const char *)r->b[1], r->len[1], r->b[2], r->len[2]);
}

static int my_xattr_scan(struct store *st, xattr_scan_cb cb, void *arg)
{
	struct page pg = { .layout = "aakl", .lim = SCAN_BATCH };
	struct user_cb u = { .fn.xattr = cb, .arg = arg };
	return paged(MS(st), NULL, S_XATTR_SCAN, &pg, xattr_scan_row, &u);
}

static int inline_scan_row(const struct user_cb *u, struct page *pg, const struct row *r)
{
	pg->a = r->u[0] + 1;
	return u->fn.data(u->arg, r->u[0], false, 0, r->b[1], r->len[1]);
}

static int chunk_scan_row(const struct user_cb *u, struct page *pg, const struct row *r)
{
	pg->a = r->u[0];
	pg->b = r->u[1] + 1;
	return u->fn.data(u->arg, r->u[0], true, r->u[1], r->b[2], r->len[2]);
}

/* inline data, then chunks; few records a page, chunks being large */
static int my_data_scan(struct store *st, data_scan_cb cb, void *arg)
{
	struct user_cb u = { .fn.data = cb, .arg = arg };
	struct page in = { .layout = "al", .lim = DATA_BATCH };
	int rc = paged(MS(st), NULL, S_INLINE_SCAN, &in, inline_scan_row, &u);
	if (rc || u.stopped)
		return rc;
	struct page ch = { .layout = "aabl", .lim = DATA_BATCH };
	return paged(MS(st), NULL, S_CHUNK_SCAN, &ch, chunk_scan_row, &u);
}

/* The server keeps the secondary indexes (entries by cookie, names by
 * inode) itself: what can be checked is the tables, with CHECK TABLE. */
static int my_check_indexes(struct store *st, bool repair, store_issue_cb cb, void *arg)
{
	struct my_store *s = MS(st);
	struct store_txn *tt;
	int rc = my_begin_read(st, &tt);
	if (rc)
		return rc;
	struct my_txn *t = MT(tt);
	for (size_t i = 0; i < MFS_ARRAY_LEN(tables) && !rc; i++) {
		char q[128];
		snprintf(q, sizeof q, "CHECK TABLE `%s`", tables[i]);
		s->statements++;
		if (mysql_query(t->c->m, q)) {
			rc = conn_query_error(t, "check table");
			break;
		}
		MYSQL_RES *res = mysql_store_result(t->c->m);
		MYSQL_ROW row;
		while (res && (row = mysql_fetch_row(res))) {
			/* Table, Op, Msg_type, Msg_text */
			if (row[2] && row[3] && strcasecmp(row[2], "status") && strcasecmp(row[2], "note") &&
			    strcasecmp(row[2], "info")) {
				char what[512];
				snprintf(what, sizeof what, "table %s: %s: %s", tables[i], row[2], row[3]);
				cb(arg, 0, what, false);
			}
		}
		if (res)
			mysql_free_result(res);
	}
	my_abort(tt);
	return rc;
}

/* ---------------------------------------------------------------- directory entries */

static int my_dirent_get(struct store_txn *tt, uint64_t parent, const char *name, size_t len,
			 struct dirent_rec *out)
{
	unsigned long l = len;
	MYSQL_BIND p[2];
	bu(&p[0], &parent);
	bb(&p[1], name, &l);
	struct row r;
	int rc = run_one(MT(tt), S_DIRENT_GET, p, &r);
	if (rc)
		return rc;
	out->ino = r.u[0];
	out->type = (uint32_t)r.u[1];
	out->cookie = r.u[2];
	row_free(&r);
	return 0;
}

static int my_entry_get(struct store_txn *tt, uint64_t dir, bool lock, struct inode_rec *dir_out, const char *name,
			size_t len, bool *found, struct dirent_rec *d, struct inode_rec *child_out)
{
	unsigned long l = len;
	MYSQL_BIND p[2];
	bb(&p[0], name, &l);
	bu(&p[1], &dir);
	struct row r;
	int rc = run_one(MT(tt), lock ? S_ENTRY_GET_LOCK : S_ENTRY_GET, p, &r);
	if (rc)
		return rc;
	memset(dir_out, 0, sizeof *dir_out);
	inode_from_cols(r.u, dir_out);
	*found = r.u[19] != 0;
	if (*found) {
		d->ino = r.u[19];
		d->type = (uint32_t)r.u[20];
		d->cookie = r.u[21];
	}
	if (child_out) {
		memset(child_out, 0, sizeof *child_out);
		if (*found)
			inode_from_cols(r.u + 22, child_out);
	}
	row_free(&r);
	return 0;
}

static int my_dirent_put(struct store_txn *tt, uint64_t parent, const char *name, size_t len,
			 const struct dirent_rec *d)
{
	struct sbuf row = { 0 };
	sb_u64(&row, parent);
	sb_bytes(&row, name, len);
	sb_u64(&row, d->ino);
	sb_u64(&row, d->type);
	sb_u64(&row, d->cookie);
	return defer(tt, W_DIRENT, false, true, parent, name, len, &row);
}

static int my_dirent_del(struct store_txn *tt, uint64_t parent, const char *name, size_t len,
			 const struct dirent_rec *d)
{
	return defer_del(tt, W_DIRENT, parent, name, len);
}

static int my_names_of(struct store_txn *tt, uint64_t ino, name_cb cb, void *arg)
{
	MYSQL_BIND p[1];
	bu(&p[0], &ino);
	struct rows rs = { 0 };
	int rc = run(MT(tt), S_NAMES_OF, p, &rs);
	for (size_t i = 0; i < rs.n && !rc; i++)
		rc = cb(arg, rs.r[i].u[0], (const char *)rs.r[i].b[1], rs.r[i].len[1]);
	rows_free(&rs);
	return rc < 0 ? rc : 0;
}

static int dir_list_row(const struct user_cb *u, struct page *pg, const struct row *r)
{
	struct dirent_rec d = { .ino = r->u[1], .type = (uint32_t)r->u[2], .cookie = r->u[3] };
	pg->a = d.cookie + 1;
	return u->fn.dir(u->arg, (const char *)r->b[0], r->len[0], &d);
}

static int my_dir_list(struct store_txn *tt, uint64_t parent, uint64_t from, dir_list_cb cb, void *arg)
{
	struct page pg = { .layout = "fal", .fixed = parent, .a = from, .lim = SCAN_BATCH };
	struct user_cb u = { .fn.dir = cb, .arg = arg };
	return paged(MS(tt->store), tt, S_DIR_LIST, &pg, dir_list_row, &u);
}

/* ---------------------------------------------------------------- values by key */

/* The one byte column of a lookup, malloc'd. */
static int get_bytes(struct store_txn *tt, int sid, MYSQL_BIND *p, void **val, size_t *len)
{
	struct row r;
	int rc = run_one(MT(tt), sid, p, &r);
	if (rc)
		return rc;
	*val = r.b[0];
	*len = r.len[0];
	r.b[0] = NULL;
	row_free(&r);
	return 0;
}

static int my_xattr_get(struct store_txn *t, uint64_t ino, const char *name, void **val, size_t *len)
{
	unsigned long l = strlen(name);
	MYSQL_BIND p[2];
	bu(&p[0], &ino);
	bb(&p[1], name, &l);
	return get_bytes(t, S_XATTR_GET, p, val, len);
}

static int my_xattr_put(struct store_txn *tt, uint64_t ino, const char *name, const void *val, size_t len)
{
	size_t nl = strlen(name);
	struct sbuf row = { 0 };
	sb_u64(&row, ino);
	sb_bytes(&row, name, nl);
	sb_bytes(&row, val, len);
	return defer(tt, W_XATTR, false, true, ino, name, nl, &row);
}

static int my_xattr_del(struct store_txn *tt, uint64_t ino, const char *name)
{
	return defer_del(tt, W_XATTR, ino, name, strlen(name));
}

static int my_xattr_list(struct store_txn *tt, uint64_t ino, xattr_list_cb cb, void *arg)
{
	MYSQL_BIND p[1];
	bu(&p[0], &ino);
	struct rows rs = { 0 };
	int rc = run(MT(tt), S_XATTR_LIST, p, &rs);
	for (size_t i = 0; i < rs.n && !rc; i++)
		rc = cb(arg, (const char *)rs.r[i].b[0], rs.r[i].len[0]);
	rows_free(&rs);
	return rc < 0 ? rc : 0;
}

static int my_inline_get(struct store_txn *t, uint64_t ino, void **val, size_t *len)
{
	MYSQL_BIND p[1];
	bu(&p[0], &ino);
	return get_bytes(t, S_INLINE_GET, p, val, len);
}

static int my_inline_put(struct store_txn *tt, uint64_t ino, const void *val, size_t len)
{
	struct sbuf row = { 0 };
	sb_u64(&row, ino);
	sb_bytes(&row, val, len);
	return defer(tt, W_INLINE, false, true, ino, NULL, 0, &row);
}

static int my_inline_del(struct store_txn *t, uint64_t ino)
{
	return defer_del(t, W_INLINE, ino, NULL, 0);
}

static int my_chunk_get(struct store_txn *t, uint64_t ino, uint64_t idx, void **val, size_t *len)
{
	MYSQL_BIND p[2];
	bu(&p[0], &ino);
	bu(&p[1], &idx);
	return get_bytes(t, S_CHUNK_GET, p, val, len);
}

static int my_chunk_view(struct store_txn *t, uint64_t ino, uint64_t idx,
			 int (*fn)(void *arg, const void *rec, size_t len), void *arg)
{
	void *v;
	size_t len;
	int rc = my_chunk_get(t, ino, idx, &v, &len);
	if (rc)
		return rc;
	rc = fn(arg, v, len);
	free(v);
	return rc;
}

static int my_chunk_put(struct store_txn *tt, uint64_t ino, uint64_t idx, const void *val, size_t len)
{
	struct my_txn *t = MT(tt);
	if (!t->write)
		return -EROFS;
	unsigned long vl = len;
	MYSQL_BIND p[3];
	bu(&p[0], &ino);
	bu(&p[1], &idx);
	bb(&p[2], val, &vl);
	return run(t, S_CHUNK_PUT, p, NULL);
}

static int my_chunk_del(struct store_txn *tt, uint64_t ino, uint64_t idx)
{
	uint64_t v[2] = { ino, idx };
	return write_u64s(tt, S_CHUNK_DEL, v, 2);
}

static int chunk_list_row(const struct user_cb *u, struct page *pg, const struct row *r)
{
	pg->a = r->u[0] + 1;
	return u->fn.chunk(u->arg, r->u[0]);
}

static int my_chunk_list(struct store_txn *tt, uint64_t ino, uint64_t from, chunk_list_cb cb, void *arg)
{
	struct page pg = { .layout = "fal", .fixed = ino, .a = from, .lim = 4 * SCAN_BATCH };
	struct user_cb u = { .fn.chunk = cb, .arg = arg };
	return paged(MS(tt->store), tt, S_CHUNK_LIST, &pg, chunk_list_row, &u);
}

/* ---------------------------------------------------------------- orphans */

static int my_orphan_put(struct store_txn *tt, uint64_t ino)
{
	struct sbuf row = { 0 };
	sb_u64(&row, ino);
	sb_u64(&row, MS(tt->store)->session);
	return defer(tt, W_ORPHAN, false, true, ino, NULL, 0, &row);
}

static int my_orphan_del(struct store_txn *t, uint64_t ino)
{
	return defer_del(t, W_ORPHAN, ino, NULL, 0);
}

/* ---------------------------------------------------------------- open files */

static int my_hold(struct store_txn *tt, uint64_t ino, bool on)
{
	uint64_t sess = MS(tt->store)->session;
	struct sbuf row = { 0 };
	sb_u64(&row, ino);
	sb_u64(&row, sess);
	return defer(tt, W_HOLD, !on, true, ino, &sess, sizeof sess, &row);
}

static int my_inode_get_held(struct store_txn *tt, uint64_t ino, struct inode_rec *out, uint32_t *others)
{
	struct my_store *s = MS(tt->store);
	int64_t live = live_since();
	MYSQL_BIND p[3];
	bu(&p[0], &s->session);
	bi(&p[1], &live);
	bu(&p[2], &ino);
	struct row r;
	int rc = run_one(MT(tt), S_INODE_GET_HELD, p, &r);
	if (rc)
		return rc;
	memset(out, 0, sizeof *out);
	inode_from_cols(r.u, out);
	*others = (uint32_t)r.u[19];
	row_free(&r);
	return 0;
}

static int my_orphan_list(struct store *st, ino_list_cb cb, void *arg)
{
	struct my_store *s = MS(st);
	int64_t dead = live_since();
	MYSQL_BIND p[3];
	bu(&p[0], &s->session);
	bi(&p[1], &dead);
	bi(&p[2], &dead);
	struct rows rs = { 0 };
	int rc = read_batch(s, S_ORPHAN_LIST, p, &rs);
	for (size_t i = 0; i < rs.n && !rc; i++)
		rc = cb(arg, rs.r[i].u[0]);
	rows_free(&rs);
	return rc < 0 ? rc : 0;
}

/* ---------------------------------------------------------------- file locks */

static int my_lock_list(struct store_txn *tt, uint64_t ino, int (*cb)(void *arg, const struct mfs_lock *l),
			void *arg)
{
	struct my_txn *t = MT(tt);
	struct my_store *s = MS(tt->store);
	int64_t alive = live_since();
	MYSQL_BIND p[2];
	bi(&p[0], &alive);
	bu(&p[1], &ino);
	struct rows rs = { 0 };
	int rc = run(t, S_PLOCK_LIST, p, &rs);
	for (size_t i = 0; i < rs.n && !rc; i++) {
		const uint64_t *u = rs.r[i].u;
		struct mfs_lock l = { .ino = ino, .session = u[0], .kind = (uint32_t)u[1], .owner = u[2],
				      .start = u[3], .end = u[4], .type = (uint32_t)u[5], .pid = (uint32_t)u[6],
				      .mine = u[0] == s->session, .live = u[0] == s->session || u[7] != 0 };
		rc = cb(arg, &l);
	}
	rows_free(&rs);
	return rc < 0 ? rc : 0;
}

static int my_lock_put(struct store_txn *tt, const struct mfs_lock *l)
{
	uint64_t v[8] = { l->ino, MS(tt->store)->session, l->kind, l->owner, l->start, l->end, l->type, l->pid };
	return write_u64s(tt, S_PLOCK_PUT, v, 8);
}

static int my_lock_del(struct store_txn *tt, uint64_t ino, uint64_t session, uint32_t kind, uint64_t owner)
{
	uint64_t v[4] = { ino, session ? session : MS(tt->store)->session, kind, owner };
	return write_u64s(tt, S_PLOCK_DEL, v, 4);
}

/* ---------------------------------------------------------------- provenance */

static int my_prov_get(struct store_txn *t, const void *key, size_t klen, void **val, size_t *len, bool lock)
{
	if (klen > PROV_KEY_MAX)
		return -EINVAL;
	unsigned long kl = klen;
	MYSQL_BIND p[1];
	bb(&p[0], key, &kl);
	return get_bytes(t, lock ? S_PROV_GET_LOCK : S_PROV_GET, p, val, len);
}

static int my_prov_put(struct store_txn *tt, const void *key, size_t klen, const void *val, size_t len)
{
	if (klen > PROV_KEY_MAX)
		return -EINVAL;
	struct sbuf row = { 0 };
	sb_bytes(&row, key, klen);
	sb_bytes(&row, val, len);
	return defer(tt, W_PROV, false, false, 0, key, klen, &row);
}

static int my_prov_del(struct store_txn *tt, const void *key, size_t klen)
{
	if (klen > PROV_KEY_MAX)
		return -EINVAL;
	struct sbuf row = { 0 };
	sb_bytes(&row, key, klen);
	return defer(tt, W_PROV, true, false, 0, key, klen, &row);
}

static int prov_scan_row(const struct user_cb *u, struct page *pg, const struct row *r)
{
	if (r->len[0] <= PROV_KEY_MAX)
		page_key_after(pg, r->b[0], r->len[0]);
	return u->fn.prov(u->arg, r->b[0], r->len[0], r->b[1], r->len[1]);
}

/* The first row of a scan, which then stops: the last record of a
 * descending one. */
static int prov_last_row(const struct user_cb *u, struct page *pg, const struct row *r)
{
	int rc = u->fn.prov(u->arg, r->b[0], r->len[0], r->b[1], r->len[1]);
	return rc ? rc : 1;
}

static int prov_range(struct store_txn *tt, const void *prefix, size_t plen, bool last,
		      int (*cb)(void *arg, const void *key, size_t klen, const void *val, size_t len), void *arg)
{
	if (plen > PROV_KEY_MAX)
		return -EINVAL;
	/* from the prefix to the prefix with its last byte below 0xff raised */
	unsigned char hi[PROV_KEY_MAX + 1];
	memcpy(hi, prefix, plen);
	unsigned long hil = plen;
	while (hil > 0 && hi[hil - 1] == 0xff)
		hil--;
	if (hil == 0) {
		/* an empty prefix (the whole key space, as `metafs dump` reads
		 * it) or one of 0xff bytes: nothing is above it but this, longer
		 * than any key */
		memset(hi, 0xff, sizeof hi);
		hil = sizeof hi;
	} else {
		hi[hil - 1]++;
	}
	struct page pg = { .layout = "khl", .lim = last ? 1 : SCAN_BATCH, .klen = plen, .hi = hi, .hilen = hil };
	memcpy(pg.key, prefix, plen);
	struct user_cb u = { .fn.prov = cb, .arg = arg };
	return paged(MS(tt->store), tt, last ? S_PROV_LAST : S_PROV_SCAN, &pg, last ? prov_last_row : prov_scan_row,
		     &u);
}

static int my_prov_scan(struct store_txn *tt, const void *prefix, size_t plen,
			int (*cb)(void *arg, const void *key, size_t klen, const void *val, size_t len), void *arg)
{
	return prov_range(tt, prefix, plen, false, cb, arg);
}

static int my_prov_last(struct store_txn *tt, const void *prefix, size_t plen,
			int (*cb)(void *arg, const void *key, size_t klen, const void *val, size_t len), void *arg)
{
	return prov_range(tt, prefix, plen, true, cb, arg);
}

/* ---------------------------------------------------------------- changelog */

static int my_changelog_append(struct store_txn *tt, const struct cl_rec *rec)
{
	unsigned char *data;
	size_t len;
	/* the mount's own records, which its follower passes over */
	struct cl_rec r = *rec;
	r.origin = MS(tt->store)->session;
	int rc = cl_encode(&r, &data, &len);
	if (rc)
		return rc;
	struct sbuf row = { 0 };
	sb_bytes(&row, data, len);
	free(data);
	return defer(tt, W_LOG, false, false, 0, NULL, 0, &row);
}

static int changelog_row(const struct user_cb *u, struct page *pg, const struct row *r)
{
	struct cl_rec rec;
	if (cl_decode(r->b[1], r->len[1], &rec)) {
		log_error("changelog record %llu is undecodable", (unsigned long long)r->u[0]);
		return -EIO;
	}
	rec.seq = r->u[0];
	pg->a = rec.seq + 1;
	return u->fn.log(u->arg, &rec);
}

static int my_changelog_read(struct store *st, uint64_t from, changelog_cb cb, void *arg)
{
	struct page pg = { .layout = "al", .a = from, .lim = 1024 };
	struct user_cb u = { .fn.log = cb, .arg = arg };
	return paged(MS(st), NULL, S_LOG_READ, &pg, changelog_row, &u);
}

static int my_changelog_bounds(struct store *st, uint64_t *first, uint64_t *last)
{
	struct rows rs = { 0 };
	int rc = read_batch(MS(st), S_LOG_BOUNDS, NULL, &rs);
	if (rc)
		return rc;
	*first = rs.n ? rs.r[0].u[0] : 0;
	*last = rs.n ? rs.r[0].u[1] : 0;
	rows_free(&rs);
	return 0;
}

static int my_changelog_count(struct store *st, uint64_t after, uint64_t upto, uint64_t *n)
{
	MYSQL_BIND p[2];
	bu(&p[0], &after);
	bu(&p[1], &upto);
	struct rows rs = { 0 };
	int rc = read_batch(MS(st), S_LOG_COUNT, p, &rs);
	if (rc)
		return rc;
	*n = rs.n ? rs.r[0].u[0] : 0;
	rows_free(&rs);
	return 0;
}

/* ---------------------------------------------------------------- volume-wide */

/* Blocks of inode numbers come from one counter row, each mount taking a
 * block in a transaction of its own, so numbers are unique cluster-wide. */
static int my_ino_alloc(struct store *st, uint64_t *out)
{
	struct my_store *s = MS(st);
	if (s->readonly)
		return -EROFS;
	pthread_mutex_lock(&s->ino_lock);
	int rc = 0;
	if (s->next_ino >= s->ino_hi) {
		uint64_t n = INO_RESERVE, hi = 0;
		MYSQL_BIND p[1];
		bu(&p[0], &n);
		rc = write_one(s, S_INO_RESERVE, p, &hi);
		if (!rc && hi < INO_RESERVE)
			rc = -EIO;
		if (!rc) {
			s->ino_hi = hi;
			s->next_ino = hi - INO_RESERVE;
		}
	}
	if (!rc)
		*out = s->next_ino++;
	pthread_mutex_unlock(&s->ino_lock);
	return rc;
}

static int my_ino_floor(struct store *st, uint64_t raise_to, uint64_t *out)
{
	struct my_store *s = MS(st);
	if (raise_to && s->readonly)
		return -EROFS;
	pthread_mutex_lock(&s->ino_lock);
	int rc = 0;
	if (raise_to) {
		MYSQL_BIND p[1];
		bu(&p[0], &raise_to);
		rc = write_one(s, S_INO_RAISE, p, NULL);
		/* the rest of this mount's block may lie below the new floor:
		 * skip it, and the next number comes from a new block */
		if (!rc && s->next_ino < raise_to)
			s->next_ino = raise_to < s->ino_hi ? raise_to : s->ino_hi;
	}
	struct rows rs = { 0 };
	if (!rc)
		rc = read_batch(s, S_INO_FLOOR, NULL, &rs);
	if (!rc && rs.n != 1)
		rc = -EIO;
	if (!rc)
		*out = rs.r[0].u[0];
	rows_free(&rs);
	pthread_mutex_unlock(&s->ino_lock);
	return rc;
}

static int my_writers(struct store *st, uint64_t *n)
{
	struct my_store *s = MS(st);
	int64_t alive = live_since();
	MYSQL_BIND p[2];
	bu(&p[0], &s->session);
	bi(&p[1], &alive);
	struct rows rs = { 0 };
	int rc = read_batch(s, S_WRITERS, p, &rs);
	if (!rc && rs.n != 1)
		rc = -EIO;
	if (!rc)
		*n = rs.r[0].u[0];
	rows_free(&rs);
	return rc;
}

static int my_super_get(struct store *st, struct superblock *sb)
{
	struct rows rs = { 0 };
	int rc = read_batch(MS(st), S_SUPER_GET, NULL, &rs);
	if (rc)
		return rc;
	if (!rs.n) {
		rows_free(&rs);
		return -ENOENT;
	}
	struct row *r = &rs.r[0];
	sb->format_version = (uint32_t)r->u[0];
	if (r->len[1] == 16)
		memcpy(sb->uuid, r->b[1], 16);
	sb->inline_threshold = (uint32_t)r->u[2];
	sb->chunk_size = (uint32_t)r->u[3];
	sb->created_ns = (int64_t)r->u[4];
	rows_free(&rs);
	return 0;
}

static int my_super_put(struct store *st, const struct superblock *sb)
{
	uint64_t fv = sb->format_version, it = sb->inline_threshold, cs = sb->chunk_size;
	int64_t created = sb->created_ns;
	unsigned long ul = 16;
	MYSQL_BIND p[5];
	bu(&p[0], &fv);
	bb(&p[1], sb->uuid, &ul);
	bu(&p[2], &it);
	bu(&p[3], &cs);
	bi(&p[4], &created);
	return write_one(MS(st), S_SUPER_PUT, p, NULL);
}

/* Every commit is durable on the server (innodb_flush_log_at_trx_commit=1,
 * checked at open) and, on Galera or NDB, on the other nodes. */
static int my_sync(struct store *st)
{
	return 0;
}

static int my_catch_up(struct store *st)
{
	return 0; /* every read sees what is committed */
}

static int my_make_room(struct store *st)
{
	return 0;
}

/* Simple queries (not prepared: no parameters) of one row of numbers. */
static int simple_numbers(struct my_store *s, const char *q, uint64_t *out, int n)
{
	struct store_txn *tt;
	int rc = my_begin_read(&s->base, &tt);
	if (rc)
		return rc;
	struct my_txn *t = MT(tt);
	s->statements++;
	if (mysql_query(t->c->m, q)) {
		rc = conn_query_error(t, q);
	} else {
		MYSQL_RES *res = mysql_store_result(t->c->m);
		MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
		for (int i = 0; i < n; i++)
			out[i] = row && row[i] ? strtoull(row[i], NULL, 10) : 0;
		if (!row)
			rc = -ENOENT;
		if (res)
			mysql_free_result(res);
	}
	my_abort(tt);
	return rc;
}

/* A cluster has no fixed size: like other network filesystems without a
 * quota it reports a large one (1 PiB), less what the tables hold. The
 * figures are refreshed at most every 30 s; the namespace asks often. */
static int my_statfs(struct store *st, struct statvfs *out)
{
	struct my_store *s = MS(st);
	int64_t now = mfs_now_ns();
	if (now - s->statfs_ns > 30000000000LL) {
		uint64_t v[2] = { 0, 0 };
		char q[512];
		snprintf(q, sizeof q,
			 "SELECT SUM(DATA_LENGTH + INDEX_LENGTH), SUM(IF(TABLE_NAME = 'inodes', TABLE_ROWS, 0)) "
			 "FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()");
		if (simple_numbers(s, q, v, 2) == 0) {
			s->used_bytes = v[0];
			s->used_inodes = v[1];
		}
		s->statfs_ns = now;
	}
	const uint64_t bsize = 4096, total = (1ULL << 50) / bsize, files = 1ULL << 40;
	uint64_t used = (s->used_bytes + bsize - 1) / bsize;
	memset(out, 0, sizeof *out);
	out->f_bsize = out->f_frsize = bsize;
	out->f_blocks = total;
	out->f_bfree = out->f_bavail = used < total ? total - used : 0;
	out->f_files = files;
	out->f_ffree = out->f_favail = files - s->used_inodes;
	out->f_namemax = MFS_NAME_MAX;
	return 0;
}

static int my_describe(struct store *st, int (*emit)(void *, const char *, const char *), void *arg)
{
	struct my_store *s = MS(st);
	char num[64], hp[300];
	int rc = emit(arg, "store", "mysql");
	int h = s->cur_host;
	snprintf(hp, sizeof hp, "%s:%u", s->hosts[h].name, s->hosts[h].port);
	if (!rc)
		rc = emit(arg, "mysql.host", hp);
	if (!rc)
		rc = emit(arg, "mysql.database", s->db);
	struct store_txn *tt;
	if (!rc && my_begin_read(st, &tt) == 0) {
		const char *ver = mysql_get_server_info(MT(tt)->c->m);
		rc = emit(arg, "mysql.server_version", ver ? ver : "");
		my_abort(tt);
	}
	for (size_t i = 0; i < MFS_ARRAY_LEN(tables) && !rc; i++) {
		char q[512], key[64];
		uint64_t v[3];
		snprintf(q, sizeof q,
			 "SELECT TABLE_ROWS, DATA_LENGTH + INDEX_LENGTH, 0 FROM information_schema.TABLES "
			 "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '%s'", tables[i]);
		if (simple_numbers(s, q, v, 3))
			continue;
		snprintf(key, sizeof key, "mysql.%s.rows_estimate", tables[i]);
		snprintf(num, sizeof num, "%llu", (unsigned long long)v[0]);
		rc = emit(arg, key, num);
		snprintf(key, sizeof key, "mysql.%s.bytes", tables[i]);
		snprintf(num, sizeof num, "%llu", (unsigned long long)v[1]);
		if (!rc)
			rc = emit(arg, key, num);
	}
	struct { const char *k; uint64_t v; } counts[] = {
		{ "mysql.statements", s->statements },
		{ "mysql.retries", s->retries },
		{ "mysql.failovers", s->failovers },
	};
	for (size_t i = 0; i < MFS_ARRAY_LEN(counts) && !rc; i++) {
		snprintf(num, sizeof num, "%llu", (unsigned long long)counts[i].v);
		rc = emit(arg, counts[i].k, num);
	}
	return rc;
}

/* ---------------------------------------------------------------- sessions */

static int session_beat(struct my_store *s)
{
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	unsigned long hl = strlen(host);
	uint64_t pid = (uint64_t)getpid();
	int64_t now = mfs_now_ns();
	MYSQL_BIND p[4];
	bu(&p[0], &s->session);
	bb(&p[1], host, &hl);
	bu(&p[2], &pid);
	bi(&p[3], &now);
	return write_one(s, S_SESSION_PUT, p, NULL);
}

/* Removes this mount's session, its connections' commit marks and its
 * open files (all closed by now), in a transaction that leaves no mark of
 * its own. */
static int end_session(struct my_store *s)
{
	unsigned backoff = 10000;
	for (int attempt = 0; attempt < 10; attempt++) {
		struct store_txn *tt;
		int rc = my_begin(&s->base, &tt);
		if (rc)
			return rc;
		struct my_txn *t = MT(tt);
		t->unmarked = true;
		MYSQL_BIND p[1];
		bu(&p[0], &s->session);
		static const int del[] = { S_SESSION_DEL, S_MARKS_DEL, S_HOLDS_DEL };
		for (size_t i = 0; i < MFS_ARRAY_LEN(del) && !rc; i++)
			rc = run(t, del[i], p, NULL);
		if (rc) {
			my_abort(tt);
		} else {
			rc = my_commit(tt);
		}
		if (rc != MFS_ERETRY)
			return rc;
		mfs_sleep_us(backoff);
		backoff *= 2;
	}
	return -EIO;
}

/* Keeps this mount's session alive, so that no other mount takes its open
 * unlinked files for a crash's leftovers. */
static void *heartbeat_main(void *arg)
{
	struct my_store *s = arg;
	pthread_mutex_lock(&s->hb_lock);
	while (!s->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += HEARTBEAT_S;
		pthread_cond_timedwait(&s->hb_cond, &s->hb_lock, &until);
		if (s->stopping)
			break;
		pthread_mutex_unlock(&s->hb_lock);
		if (session_beat(s))
			log_warn("%s: cannot refresh this mount's session", s->base.spec);
		pthread_mutex_lock(&s->hb_lock);
	}
	pthread_mutex_unlock(&s->hb_lock);
	return NULL;
}

/* ---------------------------------------------------------------- open and close */

static void my_close(struct store *st)
{
	struct my_store *s = MS(st);
	if (!s)
		return;
	if (s->heartbeat_running) {
		pthread_mutex_lock(&s->hb_lock);
		s->stopping = true;
		pthread_cond_signal(&s->hb_cond);
		pthread_mutex_unlock(&s->hb_lock);
		pthread_join(s->heartbeat, NULL);
		MYSQL_BIND p[1];
		bu(&p[0], &s->session);
		if (end_session(s))
			log_warn("%s: cannot end this mount's session", st->spec);
	}
	for (int i = 0; i < s->nidle; i++)
		conn_close(s->idle[i]);
	for (int i = 0; i < s->nhosts; i++)
		free(s->hosts[i].name);
	pthread_mutex_destroy(&s->pool_lock);
	pthread_mutex_destroy(&s->ino_lock);
	pthread_mutex_destroy(&s->hb_lock);
	pthread_cond_destroy(&s->hb_cond);
	if (s->password)
		memset(s->password, 0, strlen(s->password));
	free(s->user);
	free(s->password);
	free(s->db);
	free(s->engine);
	free(s->ssl_ca);
	free(s->ssl_cert);
	free(s->ssl_key);
	free(s->base.spec);
	free(s);
}

static const struct store_ops mysql_ops = {
	.name = "mysql",
	.changelog_gaps = true,
	.begin = my_begin,
	.begin_read = my_begin_read,
	.commit = my_commit,
	.abort = my_abort,
	.lock_global = my_lock_global,
	.inode_get = my_inode_get,
	.inode_put = my_inode_put,
	.inode_del = my_inode_del,
	.inode_scan = my_inode_scan,
	.dirent_scan = my_dirent_scan,
	.data_scan = my_data_scan,
	.xattr_scan = my_xattr_scan,
	.names_scan = my_names_scan,
	.check_indexes = my_check_indexes,
	.dirent_get = my_dirent_get,
	.entry_get = my_entry_get,
	.dirent_put = my_dirent_put,
	.dirent_del = my_dirent_del,
	.names_of = my_names_of,
	.dir_list = my_dir_list,
	.xattr_get = my_xattr_get,
	.xattr_put = my_xattr_put,
	.xattr_del = my_xattr_del,
	.xattr_list = my_xattr_list,
	.inline_get = my_inline_get,
	.inline_put = my_inline_put,
	.inline_del = my_inline_del,
	.chunk_get = my_chunk_get,
	.chunk_view = my_chunk_view,
	.chunk_put = my_chunk_put,
	.chunk_del = my_chunk_del,
	.chunk_list = my_chunk_list,
	.orphan_put = my_orphan_put,
	.orphan_del = my_orphan_del,
	.orphan_list = my_orphan_list,
	.hold = my_hold,
	.inode_get_held = my_inode_get_held,
	.prov_get = my_prov_get,
	.prov_put = my_prov_put,
	.prov_scan = my_prov_scan,
	.prov_last = my_prov_last,
	.prov_del = my_prov_del,
	.lock_list = my_lock_list,
	.lock_put = my_lock_put,
	.lock_del = my_lock_del,
	.changelog_append = my_changelog_append,
	.changelog_read = my_changelog_read,
	.changelog_bounds = my_changelog_bounds,
	.changelog_count = my_changelog_count,
	.ino_alloc = my_ino_alloc,
	.ino_floor = my_ino_floor,
	.writers = my_writers,
	.super_get = my_super_get,
	.super_put = my_super_put,
	.sync = my_sync,
	.catch_up = my_catch_up,
	.statfs = my_statfs,
	.make_room = my_make_room,
	.describe = my_describe,
	.close = my_close,
};

static int url_decode(char *s)
{
	char *q = s;
	for (char *p = s; *p; p++) {
		if (*p == '%') {
			if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
				return -1;
			char hex[3] = { p[1], p[2], 0 };
			*q++ = (char)strtol(hex, NULL, 16);
			p += 2;
		} else {
			*q++ = *p;
		}
	}
	*q = 0;
	return 0;
}

static int read_password_file(const char *path, char **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "password file %s: %s", path, strerror(errno));
		return -errno;
	}
	char line[1024];
	if (!fgets(line, sizeof line, f))
		line[0] = 0;
	fclose(f);
	line[strcspn(line, "\r\n")] = 0;
	*out = strdup(line);
	memset(line, 0, sizeof line);
	return *out ? 0 : -ENOMEM;
}

/* mysql://user@host[:port][,host[:port]...]/db[?k=v&...] */
static int parse_url(struct my_store *s, const char *url, char *err, size_t errlen)
{
	const char *p = url + 8;
	const char *at = strchr(p, '@'), *slash = strchr(p, '/');
	if (!at || !slash || at > slash) {
		snprintf(err, errlen, "%s: expected mysql://USER@HOST[:PORT][,HOST2...]/DATABASE", url);
		return -EINVAL;
	}
	if (memchr(p, ':', (size_t)(at - p))) {
		snprintf(err, errlen, "%s: a password does not belong in the URL (it shows in /proc/mounts); "
			 "set METAFS_MYSQL_PASSWORD or add ?password_file=PATH", url);
		return -EINVAL;
	}
	s->user = strndup(p, (size_t)(at - p));
	const char *hosts = at + 1;
	for (const char *h = hosts; h < slash;) {
		const char *end = memchr(h, ',', (size_t)(slash - h));
		if (!end)
			end = slash;
		const char *colon = memchr(h, ':', (size_t)(end - h));
		if (s->nhosts == MAX_HOSTS) {
			snprintf(err, errlen, "%s: at most %d hosts", url, MAX_HOSTS);
			return -EINVAL;
		}
		struct my_host *mh = &s->hosts[s->nhosts];
		mh->name = strndup(h, (size_t)((colon ? colon : end) - h));
		mh->port = 3306;
		if (colon) {
			char *e;
			unsigned long port = strtoul(colon + 1, &e, 10);
			if (e != end || port == 0 || port > 65535) {
				snprintf(err, errlen, "%s: bad port in '%.*s'", url, (int)(end - h), h);
				free(mh->name);
				return -EINVAL;
			}
			mh->port = (unsigned)port;
		}
		if (!mh->name[0]) {
			free(mh->name);
			snprintf(err, errlen, "%s: an empty host name", url);
			return -EINVAL;
		}
		s->nhosts++;
		h = end + (end < slash);
	}
	if (!s->nhosts) {
		snprintf(err, errlen, "%s: no host", url);
		return -EINVAL;
	}
	const char *q = strchr(slash, '?');
	s->db = strndup(slash + 1, q ? (size_t)(q - slash - 1) : strlen(slash + 1));
	if (!s->db[0] || strlen(s->db) > 64) {
		snprintf(err, errlen, "%s: the database name must be 1 to 64 characters", url);
		return -EINVAL;
	}
	for (const char *c = s->db; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '$') {
			snprintf(err, errlen, "%s: the database name may hold letters, digits, '_' and '$' only", url);
			return -EINVAL;
		}
	s->engine = strdup("InnoDB");
	s->connect_wait_s = 30;
	s->causal_reads = true;
	char *pwfile = NULL;
	int rc = 0;
	if (q) {
		char *opts = strdup(q + 1), *save = NULL;
		for (char *kv = strtok_r(opts, "&", &save); kv && !rc; kv = strtok_r(NULL, "&", &save)) {
			char *eq = strchr(kv, '=');
			char *v = eq ? eq + 1 : (char *)"";
			if (eq)
				*eq = 0;
			if (url_decode(v)) {
				snprintf(err, errlen, "%s: bad %%-escape in option %s", url, kv);
				rc = -EINVAL;
			} else if (!strcmp(kv, "engine")) {
				bool ok = *v != 0;
				for (const char *c = v; *c; c++)
					ok = ok && (isalnum((unsigned char)*c) || *c == '_');
				if (!ok) {
					snprintf(err, errlen, "%s: bad engine name '%s'", url, v);
					rc = -EINVAL;
				}
				free(s->engine);
				s->engine = strdup(v);
			} else if (!strcmp(kv, "password_file")) {
				free(pwfile);
				pwfile = strdup(v);
			} else if (!strcmp(kv, "ssl_ca")) {
				s->ssl_ca = strdup(v);
			} else if (!strcmp(kv, "ssl_cert")) {
				s->ssl_cert = strdup(v);
			} else if (!strcmp(kv, "ssl_key")) {
				s->ssl_key = strdup(v);
			} else if (!strcmp(kv, "tls")) {
				if (!strcmp(v, "required")) {
					s->tls = true;
				} else if (!strcmp(v, "verify")) {
					s->tls = s->tls_verify = true;
				} else {
					snprintf(err, errlen, "%s: tls=%s: use tls=required or tls=verify", url, v);
					rc = -EINVAL;
				}
			} else if (!strcmp(kv, "connect_wait")) {
				char *e;
				unsigned long w = strtoul(v, &e, 10);
				if (*e || !*v || w > 3600) {
					snprintf(err, errlen, "%s: connect_wait=%s: seconds, 0 to 3600", url, v);
					rc = -EINVAL;
				}
				s->connect_wait_s = (unsigned)w;
			} else if (!strcmp(kv, "causal_reads")) {
				if (strcmp(v, "0") && strcmp(v, "1")) {
					snprintf(err, errlen, "%s: causal_reads=%s: 1 (the default) or 0", url, v);
					rc = -EINVAL;
				}
				s->causal_reads = !strcmp(v, "1");
			} else {
				snprintf(err, errlen, "%s: unknown option '%s' (known: engine, password_file, ssl_ca, "
					 "ssl_cert, ssl_key, tls, connect_wait, causal_reads)", url, kv);
				rc = -EINVAL;
			}
		}
		free(opts);
	}
	if (!rc && pwfile)
		rc = read_password_file(pwfile, &s->password, err, errlen);
	else if (!rc && getenv("METAFS_MYSQL_PASSWORD"))
		s->password = strdup(getenv("METAFS_MYSQL_PASSWORD"));
	free(pwfile);
	return rc;
}

/* Creates the database if needed and the tables; refuses a database that
 * holds a volume already. */
static int create_schema(struct my_store *s, char *err, size_t errlen)
{
	struct my_conn *c;
	int rc = conn_open(s, false, &c, err, errlen);
	if (rc)
		return rc == -EIO ? -ECONNREFUSED : rc;
	char q[1024];
	snprintf(q, sizeof q, "CREATE DATABASE IF NOT EXISTS `%s`", s->db);
	if (mysql_query(c->m, q) || mysql_select_db(c->m, s->db)) {
		snprintf(err, errlen, "cannot create database %s: %s", s->db, mysql_error(c->m));
		conn_close(c);
		return -EACCES;
	}
	if (mysql_query(c->m, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
			      "AND TABLE_NAME = 'super'")) {
		snprintf(err, errlen, "%s", mysql_error(c->m));
		conn_close(c);
		return -EIO;
	}
	MYSQL_RES *res = mysql_store_result(c->m);
	bool exists = res && mysql_num_rows(res) > 0;
	if (res)
		mysql_free_result(res);
	if (exists) {
		snprintf(err, errlen, "database %s already holds a metafs volume; pick another database", s->db);
		conn_close(c);
		return -EEXIST;
	}
	for (size_t i = 0; i < MFS_ARRAY_LEN(schema); i++) {
		snprintf(q, sizeof q, schema[i], s->engine);
		if (mysql_query(c->m, q)) {
			snprintf(err, errlen, "cannot create the tables in %s (ENGINE=%s): %s", s->db, s->engine,
				 mysql_error(c->m));
			conn_close(c);
			return -EIO;
		}
	}
	if (mysql_query(c->m, apply_proc)) {
		snprintf(err, errlen, "cannot create the procedure " APPLY_PROC " in %s (the user needs CREATE "
			 "ROUTINE): %s", s->db, mysql_error(c->m));
		conn_close(c);
		return -EIO;
	}
	snprintf(q, sizeof q, "INSERT INTO counters (name, value) VALUES ('inohi', %d), ('schema', %d)",
		 MFS_ROOT_INO + 1, SCHEMA_VERSION);
	if (mysql_query(c->m, q) || mysql_commit(c->m)) {
		snprintf(err, errlen, "cannot write to %s: %s", s->db, mysql_error(c->m));
		conn_close(c);
		return -EIO;
	}
	conn_close(c);
	return 0;
}

/* Brings a volume of an earlier schema to this one, at the first writer's
 * open: 2 added the table of file locks, 3 commit marks and the procedure,
 * 4 the table of open files and the procedure that writes it. The
 * procedure of schema 3 is left for mounts of that version still running.
 * Two mounts doing it at once both succeed. */
static int migrate(struct my_store *s, struct my_conn *c, char *err, size_t errlen)
{
	static const char *const added[] = { PLOCKS_TABLE, MARKS_TABLE, HOLDS_TABLE };
	char q[1024];
	bool ok = true;
	for (size_t i = 0; ok && i < MFS_ARRAY_LEN(added); i++) {
		snprintf(q, sizeof q, added[i], s->engine);
		ok = !mysql_query(c->m, q);
	}
	if (ok && mysql_query(c->m, apply_proc))
		ok = mysql_errno(c->m) == 1304; /* ER_SP_ALREADY_EXISTS: the other one made it */
	snprintf(q, sizeof q, "UPDATE counters SET value = %d WHERE name = 'schema' AND value < %d", SCHEMA_VERSION,
		 SCHEMA_VERSION);
	if (!ok || mysql_query(c->m, q) || mysql_commit(c->m)) {
		snprintf(err, errlen, "cannot bring database %s to metafs schema %d: %s", s->db, SCHEMA_VERSION,
			 mysql_error(c->m));
		return -EIO;
	}
	return 0;
}

/* Warns when the server does not make each commit durable. */
static void check_durability(struct my_store *s)
{
	uint64_t v = 1;
	if (simple_numbers(s, "SELECT @@innodb_flush_log_at_trx_commit", &v, 1) == 0 && v != 1 &&
	    !strcasecmp(s->engine, "InnoDB"))
		log_warn("%s: the server has innodb_flush_log_at_trx_commit=%llu: a commit may be lost "
			 "to a power cut of the server unless the cluster holds a copy",
			 s->base.spec, (unsigned long long)v);
}

int mysql_store_open(const char *url, int flags, struct store **out, char *err, size_t errlen)
{
	pthread_once(&lib_once, lib_init);
	struct my_store *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->base.ops = &mysql_ops;
	s->base.spec = strdup(url);
	s->readonly = flags & STORE_OPEN_READONLY;
	pthread_mutex_init(&s->pool_lock, NULL);
	pthread_mutex_init(&s->ino_lock, NULL);
	pthread_mutex_init(&s->hb_lock, NULL);
	pthread_cond_init(&s->hb_cond, NULL);
	int rc = parse_url(s, url, err, errlen);
	if (!rc && (flags & STORE_OPEN_CREATE))
		rc = create_schema(s, err, errlen);
	struct my_conn *c = NULL;
	if (!rc) {
		rc = conn_open(s, true, &c, err, errlen);
		if (rc == -ENOENT)
			snprintf(err, errlen, "database %s does not exist (create a volume with: metafs format %s)",
				 s->db, url);
		else if (rc == -EIO)
			rc = -ECONNREFUSED;
	}
	if (!rc) {
		if (mysql_query(c->m, "SELECT value FROM counters WHERE name = 'schema'")) {
			unsigned e = mysql_errno(c->m);
			snprintf(err, errlen, "database %s holds no metafs volume (create one with: metafs format %s)",
				 s->db, url);
			rc = e == ER_NO_SUCH_TABLE ? -ENOENT : -EIO;
		} else {
			MYSQL_RES *res = mysql_store_result(c->m);
			MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
			long v = row && row[0] ? atol(row[0]) : 0;
			if (res)
				mysql_free_result(res);
			mysql_rollback(c->m);
			if (v >= 1 && v < SCHEMA_VERSION && !s->readonly) {
				rc = migrate(s, c, err, errlen);
				v = SCHEMA_VERSION;
			}
			if (!rc && v >= 1 && s->readonly)
				v = SCHEMA_VERSION; /* a view reads the older schemas as well */
			if (!rc && v != SCHEMA_VERSION) {
				snprintf(err, errlen, "database %s has metafs schema version %ld; this metafs uses %d",
					 s->db, v, SCHEMA_VERSION);
				rc = -EPROTO;
			}
		}
		conn_put(s, c, rc != 0);
	}
	if (!rc && !s->readonly) {
		RAND_bytes((unsigned char *)&s->session, sizeof s->session);
		s->session >>= 1; /* fits a signed column too */
		if (!s->session)
			s->session = 1;
		s->base.session = s->session;
		rc = session_beat(s);
		int64_t dead = live_since();
		MYSQL_BIND p[1];
		bi(&p[0], &dead);
		static const struct {
			int sid;
			const char *what;
		} reap[] = { { S_MARKS_REAP, "commit marks" }, { S_HOLDS_REAP, "open files" } };
		for (size_t i = 0; i < MFS_ARRAY_LEN(reap) && !rc; i++)
			if (write_one(s, reap[i].sid, p, NULL))
				log_warn("%s: cannot remove the %s of mounts that are gone", url, reap[i].what);
		if (rc)
			snprintf(err, errlen, "cannot register this mount in %s: %s", s->db, strerror(-rc));
		else if (pthread_create(&s->heartbeat, NULL, heartbeat_main, s) == 0)
			s->heartbeat_running = true;
		else
			rc = -EAGAIN;
	}
	if (rc) {
		my_close(&s->base);
		return rc;
	}
	check_durability(s);
	*out = &s->base;
	return 0;
}
