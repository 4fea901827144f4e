#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A file open on one mount of a shared volume outlives the removal of its
# last name by another mount, as POSIX keeps an unlinked file for its open
# descriptors, and is freed when the last mount that has it open closes it:
#  1. mount B has a small (inline) and a large (chunked) file open, mount A
#     removes both: B still reads every byte, writes through its descriptor
#     and reads that back; A no longer sees the names; closing on B frees
#     the inodes, their data and their xattrs in the store;
#  2. both mounts have the file open and A removes it: A closes first, B
#     still reads it; B's close frees it;
#  3. a file open nowhere is freed at once by the removal;
#  4. the mount that has it open dies (kill -9): its session goes stale and
#     the next mount to start frees the file and the dead mount's rows;
#  5. fsck is clean, and no rows of open files are left.
# Run by tests/mysql/with_mariadb.sh, which sets METAFS_TEST_MYSQL.
source "$(dirname "$0")/../e2e/lib.sh"
e2e_init python3 setfattr
[ -n "${METAFS_TEST_MYSQL:-}" ] || skip "needs METAFS_TEST_MYSQL (run through tests/mysql/with_mariadb.sh)"
port=${METAFS_TEST_MYSQL##*:}
sql() {
    mariadb --no-defaults -h127.0.0.1 -P"$port" -uroot -N -B "$db" -e "$1"
}
rows_of() { # INO: rows of the inode, its data, xattrs, orphan and open-file rows
    sql "SELECT (SELECT COUNT(*) FROM inodes WHERE ino = $1) + (SELECT COUNT(*) FROM inline_data WHERE ino = $1)
        + (SELECT COUNT(*) FROM chunks WHERE ino = $1) + (SELECT COUNT(*) FROM xattrs WHERE ino = $1)
        + (SELECT COUNT(*) FROM orphans WHERE ino = $1) + (SELECT COUNT(*) FROM holds WHERE ino = $1)"
}
# the release of a closed file reaches the daemon after close(2) returns
wait_freed() { # INO WHAT
    local i
    for i in $(seq 1 50); do
        [ "$(rows_of "$1")" = 0 ] && return 0
        sleep 0.1
    done
    fail "$2: $(rows_of "$1") rows of inode $1 are left 5 s after its last close"
}

db=ou_$$_$RANDOM
VOL=$METAFS_TEST_MYSQL/$db
A=$E2E_TMP/a
B=$E2E_TMP/b
new_volume "$VOL"
mount_volume "$VOL" "$A" -o noindex
mount_volume "$VOL" "$B" -o noindex
python3 - "$A" <<'EOF'
import os, sys
d = sys.argv[1]
open(os.path.join(d, "small"), "wb").write(b"small file\n")
big = bytes((i * 7 + i // 251) % 256 for i in range(3 * 1024 * 1024 + 123))
open(os.path.join(d, "big"), "wb").write(big)
open(os.path.join(d, "big.expected"), "wb").write(big)
EOF
cp "$A/big.expected" "$E2E_TMP/big.expected"
setfattr -n user.tag -v kept "$A/big" || fail "setfattr failed"
small_ino=$(stat -c %i "$A/small")
big_ino=$(stat -c %i "$A/big")

# ------------------------------------------------------------ 1. open on B, removed on A
exec 3<"$B/small" 4<>"$B/big"
[ "$(sql "SELECT COUNT(*) FROM holds WHERE ino IN ($small_ino, $big_ino)")" = 2 ] ||
    fail "the files open on B are not recorded as open"
rm "$A/small" "$A/big" || fail "rm on A failed"
[ ! -e "$A/small" ] && [ ! -e "$A/big" ] || fail "A still sees the removed names"
[ "$(sql "SELECT COUNT(*) FROM inodes WHERE ino IN ($small_ino, $big_ino) AND nlink = 0")" = 2 ] ||
    fail "the removed files open on B were freed (or kept their links)"
[ "$(cat <&3)" = "small file" ] || fail "B cannot read the small file it has open after A removed it"
cmp - "$E2E_TMP/big.expected" <&4 || fail "B does not read every byte of the large file it has open after A removed it"
python3 - <<'EOF' || fail "B cannot write to and read back the removed file it has open"
import os
os.pwrite(4, b"WRITTEN AFTER THE UNLINK", 1000000)
os.fsync(4)
assert os.pread(4, 24, 1000000) == b"WRITTEN AFTER THE UNLINK"
assert os.fstat(4).st_nlink == 0, os.fstat(4).st_nlink
EOF
exec 3<&- 4<&-
wait_freed "$small_ino" "the small file removed on A, closed on B"
wait_freed "$big_ino" "the large file removed on A, closed on B"

# ------------------------------------------------------------ 2. open on both, A closes first
printf 'both\n' >"$A/both"
ino=$(stat -c %i "$A/both")
exec 5<"$A/both" 6<"$B/both"
rm "$A/both" || fail "rm of a file open on both mounts failed"
exec 5<&-
sleep 0.5 # A's release, with its reclaim, is done
[ "$(cat <&6)" = both ] || fail "B cannot read the file after A, which removed it, closed it"
[ "$(rows_of "$ino")" -gt 0 ] || fail "A's close freed a file B has open"
exec 6<&-
wait_freed "$ino" "the file removed on A and closed on both"

# ------------------------------------------------------------ 3. open nowhere
printf 'none\n' >"$A/none"
ino=$(stat -c %i "$A/none")
rm "$A/none"
wait_freed "$ino" "a file open nowhere"

# ------------------------------------------------------------ 4. the mount that has it open dies
printf 'crash\n' >"$A/crash"
ino=$(stat -c %i "$A/crash")
bpid=$(daemon_pids "$B")
[ -n "$bpid" ] || fail "no daemon found for $B"
python3 -c "import sys, time; f = open(sys.argv[1]); print('open', flush=True); time.sleep(600)" "$B/crash" >"$E2E_TMP/holder.out" &
holder=$!
for i in $(seq 1 50); do
    grep -q open "$E2E_TMP/holder.out" && break
    sleep 0.1
done
rm "$A/crash"
[ "$(rows_of "$ino")" -gt 0 ] || fail "a file open on B was freed by A's rm"
kill -9 $bpid
kill $holder 2>/dev/null
wait $holder 2>/dev/null || true
fusermount3 -uz "$B" 2>/dev/null || umount -l "$B"
# the session stops beating; a session silent for 60 s is gone (made so here)
sql "UPDATE sessions SET heartbeat_ns = 0 WHERE pid = $bpid; COMMIT"
[ "$(rows_of "$ino")" -gt 0 ] || fail "the file was freed before any mount learned that B died"
C=$E2E_TMP/c
mount_volume "$VOL" "$C" -o noindex
wait_freed "$ino" "the file held by a mount that died, after the next mount started"
[ "$(sql "SELECT COUNT(*) FROM holds")" = 0 ] || fail "the open files of the dead mount are left"
unmount_volume "$C"

# ------------------------------------------------------------ 5. clean
unmount_volume "$A"
out=$("$METAFS" fsck "$VOL" 2>&1) || fail "fsck: $out"
left=$(sql "SELECT (SELECT COUNT(*) FROM orphans) + (SELECT COUNT(*) FROM holds)")
[ "$left" = 0 ] || fail "$left orphan or open-file rows left after every mount is gone"
echo "PASS"
