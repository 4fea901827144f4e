#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Name length limits, non-empty directories, hard links and link counts,
# UTF-8 and non-UTF-8 names, rename over an existing file, and renaming a
# directory into itself.
source "$(dirname "$0")/lib.sh"
e2e_init python3
setup_mounted_volume
cd "$MNT"

links() {
    stat -c %h "$1"
}
expect_links() {
    local path=$1 want=$2 got
    got=$(links "$path")
    [ "$got" -eq "$want" ] || fail "$3: link count of $path is $got, expected $want"
}

# --- name length: 255 bytes work, 256 do not.
n255=$(printf 'n%.0s' $(seq 1 255))
n256=${n255}x
must touch "$n255"
[ -f "$n255" ] || fail "a 255-byte name is not found after creating it"
ls -f | grep -qxF "$n255" || fail "a 255-byte name is not listed by readdir"
echo data >"$n255"
[ "$(cat "$n255")" = data ] || fail "a file with a 255-byte name does not read back"
must mv "$n255" short && must mv short "$n255"
must_fail touch "$n256"
last_err_matches 'File name too long'
must_fail mkdir "$n256"
last_err_matches 'File name too long'
must_fail mv "$n255" "$n256"
last_err_matches 'File name too long'
must_fail ln -s target "$n256"
last_err_matches 'File name too long'
[ ! -e "$n256" ] && [ -e "$n255" ] || fail "the refused 256-byte rename changed the directory"
# 255 bytes of multi-byte UTF-8 (127 x 2-byte 'é' + 'a') work too; one more 'é' does not.
u255=$(printf 'é%.0s' $(seq 1 127))a
u257=$(printf 'é%.0s' $(seq 1 128))a
[ "$(printf %s "$u255" | wc -c)" -eq 255 ] || fail "test setup: u255 is not 255 bytes"
must mkdir "$u255"
[ -d "$u255" ] || fail "a 255-byte UTF-8 directory name is not found"
must_fail mkdir "$u257"
last_err_matches 'File name too long'
rm -f "$n255"
rmdir "$u255"

# --- rmdir of a non-empty directory.
mkdir -p full/sub
echo x >full/file
must_fail rmdir full
last_err_matches 'Directory not empty'
rm full/file
must_fail rmdir full
last_err_matches 'Directory not empty'
rmdir full/sub
must rmdir full
[ ! -e full ] || fail "full still exists after rmdir"

# --- hard links: not to directories; link counts of files and directories.
mkdir dir
must_fail ln dir dir-link
python3 -c 'import os; os.link("dir", "dir-link2")' 2>"$E2E_TMP/pyerr" &&
    fail "link(2) of a directory succeeded"
grep -q PermissionError "$E2E_TMP/pyerr" ||
    fail "link(2) of a directory should fail with EPERM: $(tail -n 1 "$E2E_TMP/pyerr")"
[ ! -e dir-link ] && [ ! -e dir-link2 ] || fail "a refused directory hard link left a name"

echo one >file
expect_links file 1 "new file"
must ln file file.2
must ln file dir/file.3
expect_links file 3 "after two ln"
expect_links dir/file.3 3 "after two ln"
[ "$(stat -c %i file)" = "$(stat -c %i dir/file.3)" ] || fail "hard links have different inode numbers"
echo two >>dir/file.3
[ "$(cat file)" = "$(printf 'one\ntwo')" ] || fail "a write through one link is not seen through the other"
rm file.2
expect_links file 2 "after rm of one link"
must_fail ln file dir/file.3
last_err_matches 'File exists'
expect_links file 2 "after a refused ln"

expect_links dir 2 "empty directory"
mkdir dir/s1 dir/s2 dir/s3
expect_links dir 5 "directory with 3 subdirectories"
expect_links dir/s1 2 "empty subdirectory"
rmdir dir/s3
expect_links dir 4 "after rmdir of one of 3 subdirectories"
mkdir other
mv dir/s2 other/
expect_links dir 3 "after moving a subdirectory out"
expect_links other 3 "after moving a subdirectory in"
mv other/s2 other/s2-renamed
expect_links other 3 "after renaming a subdirectory in place"
touch dir/plain
expect_links dir 3 "after adding a file (files do not count)"
root_subdirs=$(find . -mindepth 1 -maxdepth 1 -type d | wc -l)
expect_links . $((root_subdirs + 2)) "root of the mount with $root_subdirs subdirectories"

# --- UTF-8 and arbitrary-byte names round-trip through readdir.
python3 - <<'PY' || fail "names do not round-trip"
import os
names = [
    "héllo wörld.txt", "日本語のファイル", "emoji 🚲🚲🚲", "Ωmega",
    "quote\"s and 'single'", "back\\slash", "tab\there", "new\nline",
    " leading space", "trailing space ", "-dash", "#hash", "...", "a:b;c",
]
os.mkdir("names")
for n in names:
    with open(os.path.join("names", n), "w") as f:
        f.write(n)
raw = [b"\xff\xfe not utf-8", b"latin1 \xe9t\xe9", b"\xc3\x28 invalid"]
for n in raw:
    with open(os.path.join(b"names", n), "wb") as f:
        f.write(n)
got = set(os.listdir(b"names"))
want = {n.encode() for n in names} | set(raw)
if got != want:
    raise SystemExit("listdir differs: missing %r, extra %r" % (want - got, got - want))
for n in names:
    with open(os.path.join("names", n)) as f:
        if f.read() != n:
            raise SystemExit("content of %r is wrong" % n)
for n in raw:
    with open(os.path.join(b"names", n), "rb") as f:
        if f.read() != n:
            raise SystemExit("content of %r is wrong" % n)
    os.stat(os.path.join(b"names", n))
# Names that differ only in Unicode normalization or case are distinct.
for n in ("caf\u00e9", "cafe\u0301", "Case", "case", "CASE"):
    open(os.path.join("names", n), "w").close()
if len(os.listdir("names")) != len(names) + len(raw) + 5:
    raise SystemExit("names differing in normalization or case were merged")
PY

# --- rename over an existing file replaces it atomically.
echo source >src
echo target >dst
ln dst dst.other
expect_links dst 2 "target before rename"
src_ino=$(stat -c %i src)
must mv -T src dst
[ ! -e src ] || fail "src still exists after mv -T src dst"
[ "$(cat dst)" = source ] || fail "dst has '$(cat dst)' after mv -T src dst, expected 'source'"
[ "$(stat -c %i dst)" = "$src_ino" ] || fail "dst is not the inode of src after the rename"
[ "$(cat dst.other)" = target ] || fail "the other link of the replaced file lost its content"
expect_links dst.other 1 "the replaced file's other link"
python3 -c 'import os; open("a","w").write("A"); open("b","w").write("B"); os.rename("a", "b")' ||
    fail "rename(2) over an existing file failed"
[ "$(cat b)" = A ] && [ ! -e a ] || fail "rename(2) over an existing file did not replace it"
# rename of a name onto itself (hard links to the same inode) is a no-op.
ln b b.same
python3 -c 'import os; os.rename("b", "b.same")' || fail "rename between two links of one inode failed"
[ -e b ] && [ -e b.same ] || fail "rename between two links of one inode removed a name"

# Directories: over an empty directory works, over a non-empty one does not,
# a file over a directory and a directory over a file do not.
mkdir -p r1/inner r2 r3/x
echo keep >r1/inner/f
must mv -T r1 r2
[ "$(cat r2/inner/f)" = keep ] && [ ! -e r1 ] || fail "mv -T onto an empty directory did not replace it"
must_fail mv -T r2 r3
last_err_matches 'Directory not empty|File exists'
[ -d r2 ] && [ -d r3/x ] || fail "a refused directory rename changed something"
must_fail python3 -c 'import os; os.rename("dst", "r3")'
last_err_matches 'IsADirectoryError'
must_fail python3 -c 'import os; os.rename("r3", "dst")'
last_err_matches 'NotADirectoryError'

# --- a directory cannot move into itself or below itself.
mkdir -p top/mid/bottom
must_fail mv top top/mid/bottom/
must_fail python3 -c 'import os; os.rename("top", "top/mid/bottom/top")'
last_err_matches 'Invalid argument'
must_fail python3 -c 'import os; os.rename("top", "top/inside")'
last_err_matches 'Invalid argument'
[ -d top/mid/bottom ] || fail "a refused rename into itself changed the tree"
must_fail python3 -c 'import os; os.rename("top/mid", "top/mid/bottom/mid")'
last_err_matches 'Invalid argument'

# The whole tree is the same after unmount and mount.
cd /
listing_before=$(tree_listing "$MNT" ' %n %i')
unmount_volume "$MNT"
mount_volume "$VOL" "$MNT"
listing_after=$(tree_listing "$MNT" ' %n %i')
[ "$listing_before" = "$listing_after" ] || {
    diff <(echo "$listing_before") <(echo "$listing_after") | head -n 20 >&2
    fail "names, link counts or inode numbers changed across remount"
}
echo "PASS [$E2E_NAME]"
