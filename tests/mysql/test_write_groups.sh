#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The MySQL store sends an operation's writes and its commit as one
# statement group (a CALL of the procedure metafs_apply4), and reads a directory with its
# entry and the entry's inode in one statement:
#  - round trips per operation through a real mount, counted by the server
#    (prepared statements executed, commits, rollbacks), stay at or under
#    the figures of this design: create 9, stat 2, rename 9, unlink 10 (the
#    one-statement-per-row design took 9, 2, 14, 18; a create was 6 before
#    the last close of a file also went to the store, see test_unlinked_across_mounts.sh);
#  - what travels in the group arrives exact: names of raw bytes (not
#    UTF-8) and of 255 bytes, xattr values with NUL bytes and of 64 KiB,
#    small files inline, read back by a second mount with cold caches;
#  - a transaction whose writes are read back before its commit (reclaim,
#    rename over a name) and one with more writes than one group holds
#    (a directory of 700 entries removed with rm -r, then fsck);
#  - a volume of schema 2 (no commit marks, no table of open files, no
#    procedure) is brought to schema 4 by the first mount and works.
# Run by tests/mysql/with_mariadb.sh, which sets METAFS_TEST_MYSQL.
source "$(dirname "$0")/../e2e/lib.sh"
e2e_init python3 setfattr getfattr
[ -n "${METAFS_TEST_MYSQL:-}" ] || skip "needs METAFS_TEST_MYSQL (run through tests/mysql/with_mariadb.sh)"
port=${METAFS_TEST_MYSQL##*:}
sql() { # DB SQL
    mariadb --no-defaults -h127.0.0.1 -P"$port" -uroot -N -B "$1" -e "$2"
}
trips() {
    sql mysql "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_stmt_execute','Com_commit','Com_rollback')" |
        awk '{ s += $2 } END { print s }'
}

db=wg_$$_$RANDOM
VOL=$METAFS_TEST_MYSQL/$db
A=$E2E_TMP/a
B=$E2E_TMP/b
new_volume "$VOL"
mount_volume "$VOL" "$A" -o noindex

# ------------------------------------------------------------ round trips
n=300
mkdir "$A/rt"
cat >"$E2E_TMP/ops.py" <<'EOF'
import os, sys
op, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    p = os.path.join(d, "f%d" % i)
    if op == "create":
        os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    elif op == "stat":
        os.stat(p)
    elif op == "rename":
        os.rename(p, os.path.join(d, "g%d" % i))
    elif op == "unlink":
        os.unlink(os.path.join(d, "g%d" % i))
EOF
declare -A limit=([create]=9 [stat]=2 [rename]=9 [unlink]=10)
for op in create stat rename unlink; do
    if [ "$op" = stat ]; then
        sync
        echo 2 >/proc/sys/vm/drop_caches
    fi
    before=$(trips)
    python3 "$E2E_TMP/ops.py" "$op" "$A/rt" "$n" || fail "$op of $n files failed"
    per=$(awk -v a="$before" -v b="$(trips)" -v n="$n" 'BEGIN { printf "%.2f", (b - a) / n }')
    note "$op: $per round trips per operation (at most ${limit[$op]})"
    awk -v p="$per" -v l="${limit[$op]}" 'BEGIN { exit !(p <= l) }' ||
        fail "$op takes $per round trips per operation, more than ${limit[$op]}"
done
[ -z "$(ls -A "$A/rt")" ] || fail "rt/ is not empty after the unlinks"

# ------------------------------------------------------------ exact bytes
raw=$(printf 'raw-\xff\xfe-\x01name')
long=$(printf 'n%.0s' $(seq 1 255))
printf 'inline content\n' >"$A/$raw"
printf 'long name\n' >"$A/$long"
python3 - "$A/$raw" <<'EOF' || fail "setxattr with NUL bytes and of 64 KiB failed"
import os, sys
os.setxattr(sys.argv[1], "user.bin", b"a\0b\0\xff" * 7)
os.setxattr(sys.argv[1], "user.big", bytes(range(256)) * 256)
EOF
# a rename over an existing name and a setattr in one go
printf 'old\n' >"$A/over"
printf 'new\n' >"$A/src"
mv "$A/src" "$A/over"
mount_volume "$VOL" "$B" -o noindex
[ "$(cat "$B/$raw")" = "inline content" ] || fail "a name of raw bytes does not read back"
[ "$(cat "$B/$long")" = "long name" ] || fail "a 255-byte name does not read back"
[ "$(cat "$B/over")" = "new" ] || fail "rename over a name: '$(cat "$B/over")'"
[ ! -e "$B/src" ] || fail "the renamed name is still there"
python3 - "$B/$raw" <<'EOF' || fail "xattrs with NUL bytes or of 64 KiB differ on a second mount"
import os, sys
assert os.getxattr(sys.argv[1], "user.bin") == b"a\0b\0\xff" * 7
assert os.getxattr(sys.argv[1], "user.big") == bytes(range(256)) * 256
EOF

# ------------------------------------------------------------ big transactions
mkdir "$A/many"
python3 - "$A/many" <<'EOF'
import os, sys
for i in range(700):
    with open(os.path.join(sys.argv[1], "e%04d" % i), "w") as f:
        f.write("x" * (i % 50))
    os.setxattr(os.path.join(sys.argv[1], "e%04d" % i), "user.k", b"v%d" % i)
EOF
[ "$(ls "$B/many" | wc -l)" = 700 ] || fail "the second mount does not see 700 entries"
[ "$(getfattr --only-values -n user.k "$B/many/e0699" 2>/dev/null)" = v699 ] || fail "an xattr of a new file differs"
rm -r "$A/many" "$A/$raw" || fail "rm -r of 700 entries failed"
# B learns of it from the changelog, within its entry timeout at worst
for i in $(seq 1 50); do
    [ -e "$B/many" ] || break
    sleep 0.1
done
[ ! -e "$B/many" ] || fail "the removed directory is still seen by the other mount after 5 s"
unmount_volume "$B"
unmount_volume "$A"
out=$("$METAFS" fsck "$VOL" 2>&1) || fail "fsck after the round trips: $out"
left=$(sql "$db" "SELECT (SELECT COUNT(*) FROM xattrs) + (SELECT COUNT(*) FROM orphans) + (SELECT COUNT(*) FROM commit_marks) + (SELECT COUNT(*) FROM holds)")
[ "$left" = 0 ] || fail "$left xattr, orphan, commit-mark or open-file rows left after the files and mounts are gone"

# ------------------------------------------------------------ schema 2 to 4
sql "$db" "DROP PROCEDURE metafs_apply4; DROP TABLE commit_marks; DROP TABLE holds; UPDATE counters SET value = 2 WHERE name = 'schema'; COMMIT"
mount_volume "$VOL" "$A" -o noindex
[ "$(cat "$A/over")" = "new" ] || fail "a schema 2 volume does not read after the upgrade"
printf 'after\n' >"$A/after" || fail "a write to an upgraded volume failed"
[ "$(sql "$db" "SELECT value FROM counters WHERE name = 'schema'")" = 4 ] || fail "the schema version is not 4 after the first mount"
[ "$(sql "$db" "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '$db' AND ROUTINE_NAME = 'metafs_apply4'")" = 1 ] ||
    fail "the upgrade did not create metafs_apply4"
exec 3<"$A/after"
[ "$(sql "$db" "SELECT COUNT(*) FROM holds")" = 1 ] || fail "an open file of an upgraded volume is not in the table of open files"
exec 3<&-
unmount_volume "$A"
out=$("$METAFS" fsck "$VOL" 2>&1) || fail "fsck after the upgrade: $out"
echo "PASS"
