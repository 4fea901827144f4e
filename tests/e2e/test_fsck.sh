#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# metafs fsck: clean on a volume in use, and, for each kind of planted
# damage, found without --repair, repaired with it, clean afterwards.
source "$(dirname "$0")/lib.sh"
e2e_init python3
PLANT=${PLANT_FAULT:-$(dirname "$METAFS")/../tests/tools/plant_fault}
[ -x "$PLANT" ] || fail "plant_fault helper not found at $PLANT (set PLANT_FAULT)"
setup_mounted_volume

mkdir -p "$MNT/d/sub/deeper"
echo "small file" >"$MNT/d/file"
setfattr -n user.k -v v "$MNT/d/file"
head -c 3000000 /dev/urandom >"$MNT/big"
echo hard >"$MNT/d/hard"
ln "$MNT/d/hard" "$MNT/d/hard2"
ln -s ../big "$MNT/d/link"
cp -a /usr/include/linux/netfilter "$MNT/keep"
big_sum=$(sha256sum <"$MNT/big")
unmount_volume "$MNT"

fsck_expect() { # EXPECTED-EXIT [fsck args...]: runs fsck, checks its exit status
	local want=$1 rc=0
	shift
	"$METAFS" fsck "$VOL" "$@" >"$E2E_TMP/fsck.out" 2>&1 || rc=$?
	[ "$rc" -eq "$want" ] || fail "fsck $* exited $rc, expected $want:"$'\n'"$(cat "$E2E_TMP/fsck.out")"
}
found() { # KIND: the last fsck output names this kind of problem
	grep -q "^$1:" "$E2E_TMP/fsck.out" || fail "fsck did not report '$1':"$'\n'"$(cat "$E2E_TMP/fsck.out")"
}

fsck_expect 0 --scrub
grep -q "^clean" "$E2E_TMP/fsck.out" || fail "no 'clean' line"
"$METAFS" fsck "$VOL" --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r["problems"] == 0 and r["issues"] == [], r
assert r["files"] >= 5 and r["directories"] >= 4, r' || fail "fsck --json on a clean volume"

plant() { must "$PLANT" "$VOL" "$@"; }
# each: plant, find, repair, clean
plant delete-inode /d/file
fsck_expect 1
found dangling-entry
found orphan-data
found orphan-xattr
fsck_expect 1 --repair
fsck_expect 0

plant nlink /d/hard 7
fsck_expect 1
found link-count
fsck_expect 1 --repair
fsck_expect 0

plant dir-parent /d/sub
fsck_expect 1
found parent
fsck_expect 1 --repair
fsck_expect 0

lost=$("$PLANT" "$VOL" unnamed-inode)
fsck_expect 1
found unreachable-inode
fsck_expect 1 --repair
fsck_expect 0

plant unreferenced-inode >/dev/null
fsck_expect 1
found unreferenced-inode
fsck_expect 1 --repair
fsck_expect 0

plant orphan-data
fsck_expect 1
found orphan-data
found orphan-xattr
fsck_expect 1 --repair
fsck_expect 0

mount_volume "$VOL" "$MNT"
[ ! -e "$MNT/d/file" ] || fail "the entry of the deleted inode is still there"
[ "$(stat -c %h "$MNT/d/hard")" = 2 ] || fail "link count of d/hard not repaired: $(stat -c %h "$MNT/d/hard")"
[ "$(cat "$MNT/lost+found/#$lost")" = "lost!" ] || fail "the unnamed inode is not in /lost+found as #$lost"
(cd "$MNT/d/sub" && [ "$(cd .. && pwd)" = "$MNT/d" ]) || fail "d/sub/.. is not d"
diff -r /usr/include/linux/netfilter "$MNT/keep" >/dev/null || fail "untouched files changed"
[ "$(sha256sum <"$MNT/big")" = "$big_sum" ] || fail "big changed"
unmount_volume "$MNT"

# a flipped bit is found by --scrub, cannot be repaired, and reads as EIO
plant flip-byte /big
fsck_expect 0
fsck_expect 1 --scrub
found checksum
fsck_expect 4 --scrub --repair
mount_volume "$VOL" "$MNT"
if cat "$MNT/big" >/dev/null 2>"$E2E_TMP/cat.err"; then
	fail "reading a corrupt chunk succeeded"
fi
grep -q "Input/output error" "$E2E_TMP/cat.err" || fail "corrupt read: $(cat "$E2E_TMP/cat.err")"
grep -q "checksum mismatch" "$VOL/metafs.log" || fail "no log line for the checksum mismatch"
unmount_volume "$MNT"

# fsck refuses a mounted volume
mount_volume "$VOL" "$MNT"
fsck_expect 2
grep -q "unmount it first" "$E2E_TMP/fsck.out" || fail "fsck on a mounted volume: $(cat "$E2E_TMP/fsck.out")"
unmount_volume "$MNT"

# --index: the search index agrees with the metadata; a tampered one is
# found and rebuilt
fsck_expect 1 --index --scrub
grep -q "^index:" "$E2E_TMP/fsck.out" && fail "a fresh index differs: $(grep '^index:' "$E2E_TMP/fsck.out")"
python3 - "$VOL/index.sqlite" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE docs SET size = size + 1 WHERE ino = (SELECT ino FROM names LIMIT 1)")
db.commit()
PY
fsck_expect 1 --index
found index
fsck_expect 1 --index --repair
"$METAFS" fsck "$VOL" --index >"$E2E_TMP/fsck.out" 2>&1 || true
grep -q "^index:" "$E2E_TMP/fsck.out" && fail "the index still differs after --repair: $(grep '^index:' "$E2E_TMP/fsck.out")"
echo "ok: fsck finds and repairs planted damage"
