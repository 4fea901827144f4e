#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tar round trip through a mount: files of many sizes (around the inline
# threshold and chunk boundaries), a sparse file, hard links, symlinks, a
# fifo and xattrs go in with tar and come back out identical.
source "$(dirname "$0")/lib.sh"
e2e_init tar cmp getfattr setfattr

SRC=$E2E_TMP/src
mkdir -p "$SRC/sub/deeper" "$SRC/empty-dir"
for size in 0 1 4095 4096 65535 65536 65537 300000 1048576 1048577 5242880; do
    head -c "$size" /dev/urandom >"$SRC/f$size"
done
head -c 5000 /dev/urandom >"$SRC/sub/deeper/small"
truncate -s 10M "$SRC/sparse"
printf 'in the middle' | dd of="$SRC/sparse" bs=1 seek=5000000 conv=notrunc status=none
truncate -s 3M "$SRC/sparse-empty"
ln "$SRC/f4095" "$SRC/hardlink-a"
ln "$SRC/f4095" "$SRC/sub/hardlink-b"
ln "$SRC/f300000" "$SRC/sub/hardlink-c"
ln -s f65536 "$SRC/symlink-rel"
ln -s ../f1 "$SRC/sub/symlink-up"
ln -s /nonexistent/target "$SRC/symlink-dangling"
ln -s sub "$SRC/symlink-dir"
mkfifo "$SRC/fifo"
chmod 600 "$SRC/f1"
chmod 751 "$SRC/sub"
chmod 4755 "$SRC/f0"
setfattr -n user.comment -v "hello world" "$SRC/f1" ||
    skip "$E2E_TMP does not take user xattrs"
setfattr -n user.json -v '{"bicycles":4}' "$SRC/f1"
setfattr -n user.bin -v 0x00ff10ee "$SRC/f65537"
setfattr -n user.empty "$SRC/f0"
setfattr -n user.dir -v on-a-directory "$SRC/sub"
setfattr -n user.sparse -v yes "$SRC/sparse"

TAR_OPTS=(--xattrs --xattrs-include='user.*' --sparse --numeric-owner)
must tar "${TAR_OPTS[@]}" -cpf "$E2E_TMP/in.tar" -C "$SRC" .

setup_mounted_volume
mkdir "$MNT/x"
must tar "${TAR_OPTS[@]}" -xpf "$E2E_TMP/in.tar" -C "$MNT/x"
must tar "${TAR_OPTS[@]}" -cpf "$E2E_TMP/out.tar" -C "$MNT/x" .
mkdir "$E2E_TMP/out"
must tar "${TAR_OPTS[@]}" -xpf "$E2E_TMP/out.tar" -C "$E2E_TMP/out"

# Hard links: link counts of every non-directory, and the same inode
# behind all names of one file.
links() {
    (cd "$1" && find . ! -type d -printf '%p %n\n' | LC_ALL=C sort)
}
inode_of() {
    stat -c %i "$1"
}

check_tree() {
    local dir=$1 what=$2
    diff -r --no-dereference -x fifo "$SRC" "$dir" >"$E2E_TMP/diff" 2>&1 ||
        fail "diff -r of the source and $what:"$'\n'"$(head -n 20 "$E2E_TMP/diff")"
    local f
    while IFS= read -r f; do
        cmp "$SRC/$f" "$dir/$f" || fail "cmp $f: differs in $what"
    done < <(cd "$SRC" && find . -type f | LC_ALL=C sort)
    [ "$(stat -c %F "$dir/fifo")" = fifo ] || fail "fifo is a '$(stat -c %F "$dir/fifo")' in $what"
    tree_listing "$SRC" >"$E2E_TMP/list.src"
    tree_listing "$dir" >"$E2E_TMP/list.dst"
    same_files "listings (path type mode size target) of the source and $what" \
        "$E2E_TMP/list.src" "$E2E_TMP/list.dst"
    links "$SRC" >"$E2E_TMP/links.src"
    links "$dir" >"$E2E_TMP/links.dst"
    same_files "link counts of the source and $what" "$E2E_TMP/links.src" "$E2E_TMP/links.dst"
    [ "$(inode_of "$dir/f4095")" = "$(inode_of "$dir/sub/hardlink-b")" ] ||
        fail "f4095 and sub/hardlink-b are not one inode in $what"
    [ "$(inode_of "$dir/f300000")" = "$(inode_of "$dir/sub/hardlink-c")" ] ||
        fail "f300000 and sub/hardlink-c are not one inode in $what"
    # xattrs, entry by entry in a fixed order (getfattr -R follows readdir order).
    local xa
    for xa in src dst; do
        local base=$SRC
        [ $xa = dst ] && base=$dir
        (cd "$base" && find . ! -type l ! -type p | LC_ALL=C sort |
            while IFS= read -r f; do getfattr -h -d -e hex -m '^user\.' "$f"; done) \
            >"$E2E_TMP/xattr.$xa" 2>&1
    done
    grep -q '^user.json=' "$E2E_TMP/xattr.src" || fail "xattr listing of the source is incomplete"
    same_files "getfattr -d outputs of the source and $what" "$E2E_TMP/xattr.src" "$E2E_TMP/xattr.dst"
}

check_tree "$MNT/x" "the tree extracted in the mount"
check_tree "$E2E_TMP/out" "the tree extracted from a tar made in the mount"

# The sparse file reads as zeros around the written bytes.
[ "$(head -c 5000000 "$MNT/x/sparse" | tr -d '\0' | wc -c)" -eq 0 ] ||
    fail "the hole at the start of sparse does not read as zeros"
[ "$(dd if="$MNT/x/sparse" bs=1 skip=5000000 count=13 status=none)" = "in the middle" ] ||
    fail "the bytes written in the middle of sparse are wrong"

# The listing of the tar made in the mount names the same entries.
tar -tf "$E2E_TMP/in.tar" | LC_ALL=C sort >"$E2E_TMP/t.in"
tar -tf "$E2E_TMP/out.tar" | LC_ALL=C sort >"$E2E_TMP/t.out"
same_files "tar listings" "$E2E_TMP/t.in" "$E2E_TMP/t.out"
echo "PASS [$E2E_NAME]"
