#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Everything written before an unmount is there after the next mount: file
# contents of many sizes, a deep tree, symlinks, hard links; and files
# truncated down and up read back the same as on a local filesystem.
source "$(dirname "$0")/lib.sh"
e2e_init sha256sum cmp truncate
setup_mounted_volume

REF=$E2E_TMP/ref
mkdir -p "$REF"

# Files of many sizes, made in /tmp first so their contents are known.
for size in 0 1 100 4096 65535 65536 65537 131072 1000000; do
    head -c "$size" /dev/urandom >"$REF/f$size"
done
head -c 3145728 /dev/urandom >"$REF/random3m"
seq 1 200000 >"$REF/text"
must cp -a "$REF/." "$MNT/"

# A deep tree with a file at every level.
d=$MNT/deep
for i in $(seq 1 40); do
    d=$d/level$i
done
mkdir -p "$d"
d=$MNT/deep
for i in $(seq 1 40); do
    d=$d/level$i
    echo "file at depth $i" >"$d/file"
done

# Symlinks and hard links.
ln -s f65536 "$MNT/rel-link"
ln -s "$MNT/f1" "$MNT/abs-link"
ln -s does/not/exist "$MNT/dangling"
ln -s deep/level1/level2 "$MNT/dir-link"
ln -s "$(printf 'x%.0s' $(seq 1 1000))" "$MNT/long-target"
ln "$MNT/random3m" "$MNT/random3m.hardlink"
ln "$MNT/f100" "$MNT/deep/level1/f100.link1"
ln "$MNT/f100" "$MNT/deep/level1/level2/f100.link2"
mkfifo "$MNT/pipe"

# Truncations, done the same way on the mount and on the local copy.
for dir in "$MNT" "$REF"; do
    cp "$REF/random3m" "$dir/trunc-big"
    truncate -s 1000000 "$dir/trunc-big"   # down, inside a chunk
    truncate -s 5000000 "$dir/trunc-big"   # up: a hole that reads as zeros
    truncate -s 2500000 "$dir/trunc-big"
    printf tail | dd of="$dir/trunc-big" bs=1 seek=4000000 conv=notrunc status=none
    head -c 1000 /dev/zero | tr '\0' 'a' >"$dir/trunc-small"
    truncate -s 10 "$dir/trunc-small"      # down, small
    truncate -s 70000 "$dir/trunc-small"   # up past 64 KiB
    truncate -s 65537 "$dir/trunc-small"
    truncate -s 0 "$dir/trunc-small"
    truncate -s 300 "$dir/trunc-small"     # old bytes must not come back
    cp "$REF/f65537" "$dir/trunc-edge"
    truncate -s 65536 "$dir/trunc-edge"
    truncate -s 65538 "$dir/trunc-edge"
    truncate -s 0 "$dir/trunc-empty"
    truncate -s 7777777 "$dir/trunc-empty" # all hole
done
[ -n "$(tr -d '\0' <"$REF/trunc-small")" ] && fail "the reference trunc-small is not all zeros"

check_truncated() {
    local when=$1 f
    for f in trunc-big trunc-small trunc-edge trunc-empty; do
        [ "$(stat -c %s "$MNT/$f")" = "$(stat -c %s "$REF/$f")" ] ||
            fail "$f ($when): size $(stat -c %s "$MNT/$f"), expected $(stat -c %s "$REF/$f")"
        cmp "$REF/$f" "$MNT/$f" >&2 || fail "$f ($when): content differs from the same truncations in /tmp"
    done
}
check_truncated "before remount"

snapshot() {
    (cd "$MNT" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) >"$1.sums"
    (cd "$MNT" && find . -mindepth 1 ! -type d -printf '%p %y %n %s %m %U %G %l %T@ %C@\n' | LC_ALL=C sort) >"$1.list"
    (cd "$MNT" && find . -mindepth 1 -type d -printf '%p %m %n %U %G %T@ %C@\n' | LC_ALL=C sort) >"$1.dirs"
}
snapshot "$E2E_TMP/before"
written=(f0 f1 f100 f4096 f65535 f65536 f65537 f131072 f1000000 random3m text)
(cd "$REF" && sha256sum "${written[@]}") >"$E2E_TMP/ref.sums"
(cd "$MNT" && sha256sum "${written[@]}") >"$E2E_TMP/mnt.sums"
same_files "sha256sums of the files written into the mount and of their sources" \
    "$E2E_TMP/ref.sums" "$E2E_TMP/mnt.sums"

unmount_volume "$MNT"
mount_volume "$VOL" "$MNT"

snapshot "$E2E_TMP/after"
same_files "sha256sums before and after remount" "$E2E_TMP/before.sums" "$E2E_TMP/after.sums"
same_files "path/type/links/size/mode/owner/target/mtime/ctime before and after remount" "$E2E_TMP/before.list" "$E2E_TMP/after.list"
same_files "directories before and after remount" "$E2E_TMP/before.dirs" "$E2E_TMP/after.dirs"
check_truncated "after remount"

# Spot checks with stat and readlink, independent of the snapshots.
for size in 0 1 100 4096 65535 65536 65537 131072 1000000; do
    [ "$(stat -c %s "$MNT/f$size")" -eq "$size" ] || fail "f$size has size $(stat -c %s "$MNT/f$size") after remount"
done
[ "$(stat -c %s "$MNT/random3m")" -eq 3145728 ] || fail "random3m has the wrong size after remount"
[ "$(stat -c %h "$MNT/random3m")" -eq 2 ] || fail "random3m has link count $(stat -c %h "$MNT/random3m"), expected 2"
[ "$(stat -c %h "$MNT/f100")" -eq 3 ] || fail "f100 has link count $(stat -c %h "$MNT/f100"), expected 3"
[ "$(stat -c %i "$MNT/f100")" = "$(stat -c %i "$MNT/deep/level1/level2/f100.link2")" ] ||
    fail "f100 and its hard link are different inodes after remount"
[ "$(readlink "$MNT/rel-link")" = f65536 ] || fail "rel-link points to '$(readlink "$MNT/rel-link")'"
[ "$(readlink "$MNT/abs-link")" = "$MNT/f1" ] || fail "abs-link points to '$(readlink "$MNT/abs-link")'"
[ "$(readlink "$MNT/dangling")" = does/not/exist ] || fail "dangling points to '$(readlink "$MNT/dangling")'"
[ "$(readlink "$MNT/long-target" | wc -c)" -eq 1001 ] || fail "the 1000-byte symlink target changed"
cmp "$MNT/rel-link" "$REF/f65536" || fail "reading through rel-link gives other bytes"
[ "$(cat "$MNT/dir-link/level3/file")" = "file at depth 3" ] || fail "reading through dir-link fails"
[ "$(cat "$d/file")" = "file at depth 40" ] || fail "the file at depth 40 is wrong after remount"
[ "$(stat -c %F "$MNT/pipe")" = fifo ] || fail "pipe is a '$(stat -c %F "$MNT/pipe")' after remount"

# Removing one name of a hard link keeps the other readable across a remount.
rm "$MNT/random3m"
unmount_volume "$MNT"
mount_volume "$VOL" "$MNT"
[ ! -e "$MNT/random3m" ] || fail "random3m is back after rm and remount"
[ "$(stat -c %h "$MNT/random3m.hardlink")" -eq 1 ] || fail "random3m.hardlink has link count $(stat -c %h "$MNT/random3m.hardlink"), expected 1"
cmp "$REF/random3m" "$MNT/random3m.hardlink" || fail "random3m.hardlink differs after the other name was removed"
echo "PASS [$E2E_NAME]"
