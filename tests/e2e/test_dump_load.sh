#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# metafs dump and metafs load through the real CLI and real mounts: a tree
# with inline, chunked and sparse files, a hard link, symlinks, a FIFO, a
# device node, a directory of many entries (with gaps in its cookies), names
# and xattrs that are not UTF-8, JSON and tag xattrs, lineage made by real
# programs (and a deleted source), dumped from an embedded volume and loaded
# into a new one. The copy must show the same tree byte for byte, the same
# metadata (modes, owners, times to the nanosecond, inode numbers, link
# counts, xattrs, readdir order), the same `metafs find` answers and the
# same `metafs lineage`; fsck clean; dumping it again gives the same file;
# new files get numbers never used before. Refused: a mounted source, a
# non-empty target, and dumps cut short, malformed, of another version,
# naming an inode that is not there, or altered -- each with the line at
# fault, the target left as it was. Under tests/mysql/with_mariadb.sh
# (METAFS_TEST_MYSQL set) the same again through a MySQL volume, and back.
source "$(dirname "$0")/lib.sh"
e2e_init python3 setfattr mkfifo truncate cmp

SRC=$E2E_TMP/src
MNT=$E2E_TMP/mnt
new_volume "$SRC"
mount_volume "$SRC" "$MNT"

# ---------------------------------------------------------------- the tree
cd "$MNT" || fail "cannot enter $MNT"
mkdir -p docs/deep/er many empty
printf 'hello, inline world\n' >docs/small.txt
head -c 100 /dev/urandom >docs/bin100
head -c 1500000 /dev/urandom >big.bin # six chunks of 256 KiB
# sparse: holes before, between and after the written bytes
truncate -s 10M sparse.img
printf 'middle' | dd of=sparse.img bs=1 seek=5000000 conv=notrunc status=none
printf 'end' | dd of=sparse.img bs=1 seek=$((10 * 1024 * 1024 - 3)) conv=notrunc status=none
ln docs/small.txt docs/hardlink.txt
ln -s ../big.bin docs/link-to-big
ln -s /nowhere/at/all dangling
mkfifo fifo
if ! mknod chardev c 1 3 2>/dev/null; then
    note "mknod of a device node failed here; the tree has none"
fi
for i in $(seq 1 600); do printf '%d\n' "$i" >"many/f$i"; done
rm many/f1?? # cookies with gaps
mv many/f200 many/renamed200
printf 'deep\n' >docs/deep/er/leaf
# names and xattrs that are not UTF-8, a binary value, a value with NUL
python3 - <<'PYEOF'
import os
os.makedirs(b"odd", exist_ok=True)
with open(b"odd/\xfe\xffname", "wb") as f:
    f.write(b"not utf-8 name\n")
os.setxattr(b"odd/\xfe\xffname", b"user.\xffodd", b"v")
os.setxattr(b"big.bin", b"user.raw", bytes([0, 255, 16, 254, 128]))
os.setxattr(b"docs/bin100", b"user.text", b"with\x00nul")
PYEOF
setfattr -n user.xdg.tags -v 'blue,green' docs/small.txt
setfattr -n user.tag.urgent -v '' big.bin
setfattr -n user.annotations -v '{"bicycles":4,"place":"park"}' docs/bin100
setfattr -n user.annotations -v '{"bicycles":1}' docs/deep/er/leaf
setfattr -n user.note -v 'a directory' docs
chmod 640 docs/small.txt
chmod 4750 docs/bin100
chown 1234:5678 big.bin
touch -h -d '2001-02-03 04:05:06.123456789' docs/link-to-big
touch -d '1969-07-20 20:17:40.5' docs/deep/er/leaf # before the epoch
# lineage: real programs reading and writing; a source deleted afterwards
cat docs/small.txt docs/bin100 >derived.txt
sort derived.txt >sorted.txt
cat docs/small.txt >tmp.txt
cat tmp.txt docs/deep/er/leaf >from-tmp.txt
gone_ino=$(stat -c %i tmp.txt)
rm tmp.txt
cd /

# ---------------------------------------------------------------- what to compare
cat >"$E2E_TMP/snap.py" <<'PYEOF'
# One sorted line an inode name: path, type and mode, owners, inode, links,
# mtime and ctime in ns, and by type: size and SHA-256, link target, device,
# or the directory's names in readdir order (which the cookies give); then
# every xattr in hex.
import hashlib, os, stat, sys
root = os.fsencode(sys.argv[1])
lines = []
def show(b):
    return b.decode("utf-8", "backslashreplace") if b else "."
def visit(rel):
    p = root + b"/" + rel if rel else root
    st = os.lstat(p)
    f = [show(rel), "%o" % st.st_mode, str(st.st_uid), str(st.st_gid), "ino=%d" % st.st_ino,
         "nlink=%d" % st.st_nlink, str(st.st_mtime_ns), str(st.st_ctime_ns)]
    names = []
    if stat.S_ISREG(st.st_mode):
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for b in iter(lambda: fh.read(1 << 20), b""):
                h.update(b)
        f += [str(st.st_size), h.hexdigest()]
    elif stat.S_ISLNK(st.st_mode):
        f += [str(st.st_size), show(os.readlink(p))]
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        f.append("dev=%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
    elif stat.S_ISDIR(st.st_mode):
        names = os.listdir(p)
        f.append("[" + ",".join(show(n) for n in names) + "]")
    for n in sorted(os.listxattr(p, follow_symlinks=False)):
        f.append("%s=%s" % (os.fsencode(n).hex(), os.getxattr(p, n, follow_symlinks=False).hex()))
    lines.append(" ".join(f))
    for n in names:
        visit(rel + b"/" + n if rel else n)
visit(b"")
print("\n".join(sorted(lines)))
PYEOF

QUERIES=('tag:blue' 'tag:urgent' 'annotations.bicycles:>3' 'annotations.bicycles:1..10' 'type:l' 'size:>1M'
    'derived-from:/docs/small.txt' 'generated-by:sort' 'path:/many f17')
LINEAGE=('sorted.txt --up' 'from-tmp.txt --up' 'docs/small.txt --down' 'derived.txt --down --depth 1')

# observe DIR: everything compared, seen through the mount at $MNT, into DIR
observe() {
    local out=$1 q i=0 l
    mkdir -p "$out"
    python3 "$E2E_TMP/snap.py" "$MNT" >"$out/tree" || fail "reading the tree under $MNT failed"
    for q in "${QUERIES[@]}"; do
        i=$((i + 1))
        (cd / && "$METAFS" find --consistent "$MNT" -0 "$q") >"$out/find.$i" 2>"$E2E_TMP/find.err" ||
            fail "metafs find '$q' failed: $(cat "$E2E_TMP/find.err")"
        tr '\0' '\n' <"$out/find.$i" | LC_ALL=C sort >"$out/find.$i.sorted"
        echo "$q" >>"$out/queries"
    done
    i=0
    for l in "${LINEAGE[@]}"; do
        i=$((i + 1))
        # shellcheck disable=SC2086 # the options are words
        "$METAFS" lineage "$MNT/"$l --json >"$out/lineage.$i" 2>"$E2E_TMP/lin.err" ||
            fail "metafs lineage $l failed: $(cat "$E2E_TMP/lin.err")"
    done
}

# same_as WANT GOT: the observations agree
same_as() {
    local want=$1 got=$2 i
    same_files "the trees (paths, metadata, contents, xattrs, readdir order)" "$want/tree" "$got/tree"
    for i in $(seq 1 ${#QUERIES[@]}); do
        same_files "metafs find '${QUERIES[i - 1]}'" "$want/find.$i.sorted" "$got/find.$i.sorted"
    done
    for i in $(seq 1 ${#LINEAGE[@]}); do
        same_files "metafs lineage ${LINEAGE[i - 1]} --json" "$want/lineage.$i" "$got/lineage.$i"
    done
}

observe "$E2E_TMP/src.obs"
[ -s "$E2E_TMP/src.obs/find.1.sorted" ] || fail "tag:blue finds nothing on the source"
grep -q '"deleted":true' "$E2E_TMP/src.obs/lineage.2" || fail "the lineage of from-tmp.txt does not show the deleted tmp.txt"
n_many=$(grep -c '^many/' "$E2E_TMP/src.obs/tree")
[ "$n_many" -eq 500 ] || fail "many/ holds $n_many entries, expected 500"

# a mounted source is refused, by volume and by a path in the mount
must_fail "$METAFS" dump "$SRC" -o "$E2E_TMP/live.jsonl"
last_err_matches "mounted or in use.*unmount it first"
[ ! -e "$E2E_TMP/live.jsonl" ] || fail "a refused dump left its output file"
must_fail "$METAFS" dump "$MNT/docs"
last_err_matches "inside the metafs mounted at"
unmount_volume "$MNT"

# ---------------------------------------------------------------- dump
D1=$E2E_TMP/d1.jsonl
must "$METAFS" dump "$SRC" -o "$D1"
[ "$(stat -c %a "$D1")" = 600 ] || fail "the dump file is not mode 600: it holds every file's bytes"
# its shape: header, sections in order, end record with the right counts
python3 - "$D1" "$gone_ino" <<'PYEOF' || fail "the dump's shape is wrong"
import collections, hashlib, json, sys
raw = open(sys.argv[1], "rb").read().split(b"\n")
assert raw[-1] == b"", "no newline at the end"
recs = [json.loads(l) for l in raw[:-1]]
h = recs[0]
assert h["format"] == "metafs-dump" and h["version"] == 1, h
assert h["superblock"]["chunk_size"] == 262144 and h["superblock"]["inline_threshold"] == 65536, h
assert recs[-1]["t"] == "end", recs[-1]
order = ["inode", "dirent", "xattr", "data", "prov"]
kinds = [("data" if r["t"] in ("inline", "chunk") else r["t"]) for r in recs[1:-1]]
assert kinds == sorted(kinds, key=order.index), "sections out of order"
n = collections.Counter(r["t"] for r in recs[1:-1])
end = recs[-1]
for k, key in [("inode", "inodes"), ("dirent", "dirents"), ("xattr", "xattrs"), ("inline", "inline"),
               ("chunk", "chunks"), ("prov", "prov")]:
    assert end[key] == n[k], (key, end[key], n[k])
assert end["sha256"] == hashlib.sha256(b"".join(l + b"\n" for l in raw[:-2])).hexdigest()
inos = [r["ino"] for r in recs if r.get("t") == "inode"]
assert inos == sorted(inos) and len(set(inos)) == len(inos)
assert h["ino_floor"] > max(inos) and h["ino_floor"] > int(sys.argv[2]), "ino_floor below a used number"
assert n["chunk"] >= 6 + 2, "the big and the sparse file's chunks"
assert any("name_base64" in r for r in recs if r.get("t") == "dirent"), "no name kept as base64"
assert any("value_base64" in r for r in recs if r.get("t") == "xattr"), "no value kept as base64"
assert any("name_base64" in r for r in recs if r.get("t") == "xattr"), "no xattr name kept as base64"
assert n["prov"] > 0
# the sparse file: only the chunks that hold bytes
sparse = [r for r in recs if r.get("t") == "dirent" and r.get("name") == "sparse.img"][0]["ino"]
assert len([r for r in recs if r.get("t") == "chunk" and r["ino"] == sparse]) == 2, "holes were written out"
PYEOF
"$METAFS" dump "$SRC" --json >"$E2E_TMP/d1.again" 2>"$E2E_TMP/dump.json" || fail "dump to stdout failed"
cmp -s "$D1" "$E2E_TMP/d1.again" || fail "two dumps of one unchanged volume differ"
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["records"]["inodes"] > 500 and s["output"] is None, s' "$E2E_TMP/dump.json" ||
    fail "dump --json gave no summary: $(cat "$E2E_TMP/dump.json")"

# ---------------------------------------------------------------- load, embedded
T1=$E2E_TMP/t1
# formatted otherwise: the load gives it the dump's chunk size and threshold
new_volume "$T1" --chunk-size 1M --inline-threshold 4096
"$METAFS" load "$T1" -i "$D1" --json >"$E2E_TMP/load.json" 2>"$E2E_TMP/load.err" ||
    fail "load failed: $(cat "$E2E_TMP/load.err")"
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
end = json.loads(open(sys.argv[2], "rb").read().splitlines()[-1])
assert all(s["records"][k] == end[k] for k in s["records"]), (s, end)
assert s["index"] == "rebuilt", s' "$E2E_TMP/load.json" "$D1" || fail "load --json: $(cat "$E2E_TMP/load.json")"
must "$METAFS" dump "$T1" -o "$E2E_TMP/d2.jsonl"
cmp -s "$D1" "$E2E_TMP/d2.jsonl" || fail "dumping the loaded volume does not give the first dump back"
"$METAFS" fsck "$T1" >"$E2E_TMP/fsck.out" 2>&1 || fail "fsck of the loaded volume: $(cat "$E2E_TMP/fsck.out")"
"$METAFS" fsck "$T1" --index >"$E2E_TMP/fsck.out" 2>&1 ||
    fail "fsck --index of the loaded volume: $(cat "$E2E_TMP/fsck.out")"

# a target that is not empty is refused, and left alone
must_fail "$METAFS" load "$T1" -i "$D1"
last_err_matches "is not empty.*nothing was changed"
must "$METAFS" dump "$T1" -o "$E2E_TMP/d2b.jsonl"
cmp -s "$D1" "$E2E_TMP/d2b.jsonl" || fail "a refused load changed the target"

# check_copy VOLUME NAME: mounted at $MNT, the copy shows what the source
# did; new files there get numbers the source never used
check_copy() {
    local vol=$1 name=$2
    mount_volume "$vol" "$MNT"
    observe "$E2E_TMP/$name.obs"
    same_as "$E2E_TMP/src.obs" "$E2E_TMP/$name.obs"
    cmp -s "$MNT/sparse.img" <(head -c 5000000 /dev/zero; printf middle; head -c $((10 * 1024 * 1024 - 5000006 - 3)) /dev/zero; printf end) ||
        fail "$name: the sparse file reads wrong"
    local new=() p
    echo new >"$MNT/new-file"
    mkdir "$MNT/new-dir"
    ln -s x "$MNT/new-link"
    for p in new-file new-dir new-link; do new+=("$(stat -c %i "$MNT/$p")"); done
    python3 - "$D1" "$gone_ino" "${new[@]}" <<'PYEOF' || fail "$name: a new file took a number already used"
import json, sys
lines = open(sys.argv[1], "rb").read().splitlines()
floor = json.loads(lines[0])["ino_floor"]
used = {json.loads(l)["ino"] for l in lines if l.startswith(b'{"t":"inode"')} | {int(sys.argv[2])}
for n in map(int, sys.argv[3:]):
    assert n not in used and n >= floor, (n, floor)
PYEOF
    [ "$(cat "$MNT/docs/hardlink.txt")" = "hello, inline world" ] || fail "$name: the hard link reads wrong"
    unmount_volume "$MNT"
    "$METAFS" fsck "$vol" >"$E2E_TMP/fsck.out" 2>&1 || fail "fsck of $name after use: $(cat "$E2E_TMP/fsck.out")"
}
check_copy "$T1" t1

# ---------------------------------------------------------------- bad input
E=$E2E_TMP/empty
new_volume "$E"
must "$METAFS" dump "$E" -o "$E2E_TMP/e0.jsonl"

# load_refused FILE PATTERN: loading FILE into $E fails with a message
# matching PATTERN, and $E is as it was
load_refused() {
    local file=$1 pattern=$2
    must_fail "$METAFS" load "$E" -i "$file"
    last_err_matches "$pattern"
    last_err_matches "nothing was loaded"
    must "$METAFS" dump "$E" -o "$E2E_TMP/e1.jsonl"
    cmp -s "$E2E_TMP/e0.jsonl" "$E2E_TMP/e1.jsonl" ||
        fail "a refused load ($pattern) left the target changed: $(shorten "$(diff "$E2E_TMP/e0.jsonl" "$E2E_TMP/e1.jsonl")")"
}
lines=$(wc -l <"$D1")
head -n $((lines - 1)) "$D1" >"$E2E_TMP/no-end.jsonl"
load_refused "$E2E_TMP/no-end.jsonl" "ends after line $((lines - 1)) without the dump's end record.*cut short"
head -c $(($(stat -c %s "$D1") * 2 / 3)) "$D1" >"$E2E_TMP/cut.jsonl"
load_refused "$E2E_TMP/cut.jsonl" "line $(wc -l <"$E2E_TMP/cut.jsonl" | awk '{print $1 + 1}'): the file ends inside this line"
sed '700s/.*/{"t":"dirent", oops/' "$D1" >"$E2E_TMP/malformed.jsonl"
load_refused "$E2E_TMP/malformed.jsonl" "line 700: malformed JSON"
sed '1s/"version":1,/"version":99,/' "$D1" >"$E2E_TMP/v99.jsonl"
load_refused "$E2E_TMP/v99.jsonl" "line 1: dump format version 99: this metafs reads version 1"
sed '$i {"t":"dirent","parent":1,"name":"ghost","ino":987654,"type":32768,"cookie":3}' "$D1" >"$E2E_TMP/ghost.jsonl"
load_refused "$E2E_TMP/ghost.jsonl" "line $lines: the entry 'ghost' names inode 987654, which no inode line describes"
sed '$i {"t":"xattr","ino":987654,"name":"user.x","value":"y"}' "$D1" >"$E2E_TMP/ghost-x.jsonl"
load_refused "$E2E_TMP/ghost-x.jsonl" "line $lines: the xattr 'user.x' is on inode 987654"
sed '$i {"t":"wat"}' "$D1" >"$E2E_TMP/unknown.jsonl"
load_refused "$E2E_TMP/unknown.jsonl" "line $lines: unknown record type"
# one byte of file content changed, the line still valid JSON and base64
python3 - "$D1" "$E2E_TMP/altered.jsonl" <<'PYEOF'
import sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
for i, l in enumerate(lines):
    if l.startswith(b'{"t":"chunk"'):
        at = l.index(b'"data":"') + 20
        lines[i] = l[:at] + (b"B" if l[at:at + 1] != b"B" else b"C") + l[at + 1:]
        break
open(sys.argv[2], "wb").write(b"\n".join(lines))
PYEOF
load_refused "$E2E_TMP/altered.jsonl" "line $lines: the SHA-256 .* the dump was altered or damaged"
must_fail "$METAFS" load "$E" -i "$E2E_TMP/missing.jsonl"
last_err_matches "missing.jsonl: No such file"
: >"$E2E_TMP/zero.jsonl"
load_refused "$E2E_TMP/zero.jsonl" "is empty: not a metafs dump"
"$METAFS" fsck "$E" >"$E2E_TMP/fsck.out" 2>&1 || fail "fsck after the refused loads: $(cat "$E2E_TMP/fsck.out")"
# after all that, a load through a pipe takes; --new-uuid keeps the
# target's own uuid (a copy beside the source), all else is the source's
"$METAFS" dump "$SRC" | "$METAFS" load "$E" --no-index --new-uuid >"$E2E_TMP/pipe.out" 2>&1 ||
    fail "dump | load failed: $(cat "$E2E_TMP/pipe.out")"
grep -q "search index left to the first mount" "$E2E_TMP/pipe.out" || fail "--no-index: $(cat "$E2E_TMP/pipe.out")"
must "$METAFS" dump "$E" -o "$E2E_TMP/e2.jsonl"
uuid_of() { head -n 1 "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["superblock"]["uuid"])'; }
[ "$(uuid_of "$E2E_TMP/e2.jsonl")" = "$(uuid_of "$E2E_TMP/e0.jsonl")" ] || fail "--new-uuid did not keep the target's uuid"
[ "$(uuid_of "$E2E_TMP/e2.jsonl")" != "$(uuid_of "$D1")" ] || fail "two volumes formatted apart share a uuid"
cmp -s <(sed -n "2,$((lines - 1))p" "$D1") <(sed -n "2,$((lines - 1))p" "$E2E_TMP/e2.jsonl") ||
    fail "dump | load gave another volume"

# a damaged volume is not dumped: checksums are verified, entries must name
# inodes; an earlier dump at the output path stays as it was
PLANT=${PLANT_FAULT:-$(dirname "$METAFS")/../tests/tools/plant_fault}
[ -x "$PLANT" ] || fail "plant_fault helper not found at $PLANT (set PLANT_FAULT)"
cp "$E2E_TMP/e2.jsonl" "$E2E_TMP/keep.jsonl"
must "$PLANT" "$E" flip-byte /big.bin
must_fail "$METAFS" dump "$E" -o "$E2E_TMP/keep.jsonl"
last_err_matches "chunk 0 of inode [0-9]+ fails its checksum.*fsck --scrub.*nothing was written to"
cmp -s "$E2E_TMP/e2.jsonl" "$E2E_TMP/keep.jsonl" || fail "a failed dump changed the file it was to replace"
! ls "$E2E_TMP"/keep.jsonl.partial.* 2>/dev/null || fail "a failed dump left its partial file"
must "$PLANT" "$E" delete-inode /docs/bin100
must_fail "$METAFS" dump "$E"
last_err_matches "the entry 'bin100' of directory [0-9]+ names inode [0-9]+, which does not exist.*fsck --repair"

# ---------------------------------------------------------------- a MySQL volume, and back
if [ -n "${METAFS_TEST_MYSQL:-}" ]; then
    MV=$METAFS_TEST_MYSQL/dump_$$
    new_volume "$MV"
    must "$METAFS" dump "$MV" -o "$E2E_TMP/m0.jsonl"
    # refused loads leave a MySQL target as it was too (provenance included)
    must_fail "$METAFS" load "$MV" -i "$E2E_TMP/altered.jsonl"
    last_err_matches "nothing was loaded"
    must "$METAFS" dump "$MV" -o "$E2E_TMP/m1.jsonl"
    cmp -s "$E2E_TMP/m0.jsonl" "$E2E_TMP/m1.jsonl" || fail "a refused load changed the MySQL volume"
    t0=$(now_ms)
    must "$METAFS" load "$MV" -i "$D1"
    note "loaded into MySQL in $(($(now_ms) - t0)) ms"
    must "$METAFS" dump "$MV" -o "$E2E_TMP/d3.jsonl"
    cmp -s "$D1" "$E2E_TMP/d3.jsonl" || fail "the MySQL volume dumps differently from its source"
    must_fail "$METAFS" load "$MV" -i "$D1"
    last_err_matches "is not empty"
    "$METAFS" fsck "$MV" >"$E2E_TMP/fsck.out" 2>&1 || fail "fsck of the MySQL volume: $(cat "$E2E_TMP/fsck.out")"
    # back to an embedded volume
    R=$E2E_TMP/back
    new_volume "$R"
    must "$METAFS" load "$R" -i "$E2E_TMP/d3.jsonl"
    must "$METAFS" dump "$R" -o "$E2E_TMP/d4.jsonl"
    cmp -s "$D1" "$E2E_TMP/d4.jsonl" || fail "embedded -> MySQL -> embedded changed the volume"
    # a mounted cluster volume is refused: its session is alive
    mount_volume "$MV" "$MNT"
    must_fail "$METAFS" dump "$MV"
    last_err_matches "is mounted \(1 live mount session\)"
    unmount_volume "$MNT"
    check_copy "$MV" mysql
    check_copy "$R" back
fi
note "dump of $(wc -l <"$D1") lines, $(stat -c %s "$D1") bytes; loaded and compared"
echo "PASS [$E2E_NAME]"
