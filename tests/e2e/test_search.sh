#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# metafs find through a real mount: tags, JSON and text xattrs and the
# built-in fields; -0, --json, -l, --count, --limit, --sort, --reverse;
# renames, deletions and hard links; malformed queries; awkward input
# (invalid JSON, binary and 60 KiB values, names that are not UTF-8); the
# indexer run outside the daemon, killed mid-stream and restarted; a deleted
# and a rebuilt index; and what other users are shown, through the daemon's
# search service and from the index file. Every answer is
# checked with --consistent. Checks that fail are all reported, then the
# test fails.
source "$(dirname "$0")/lib.sh"
e2e_init python3 setfattr setpriv mkfifo truncate
setup_mounted_volume

FAILED=()
# bad MESSAGE: records a failed check and goes on with the others.
bad() {
    echo "FAIL-CHECK [$E2E_NAME]: $*" >&2
    FAILED+=("$(printf '%s' "$1" | head -n 1 | cut -c1-200)")
}

# The daemon builds the first index in the background after mounting.
wait_index() {
    local i
    for i in $(seq 1 100); do
        [ -e "$1/index.sqlite" ] && return 0
        sleep 0.1
    done
    fail "no $1/index.sqlite 10 s after mounting"
}

# fnd ARGS...: metafs find --consistent ARGS from /, stdout in $E2E_TMP/out,
# stderr in $E2E_TMP/err, the exit status in $RC.
fnd() {
    RC=0
    (cd / && "$METAFS" find --consistent "$@") >"$E2E_TMP/out" 2>"$E2E_TMP/err" || RC=$?
}

# expect_in WHERE PREFIX QUERY [PATH...]: `find WHERE -0 QUERY` lists exactly
# PREFIX/PATH for each PATH, each once.
expect_in() {
    local where=$1 prefix=$2 query=$3 p
    shift 3
    fnd "$where" -0 "$query"
    if [ "$RC" -ne 0 ]; then
        bad "find $where '$query' exited $RC: $(head -c 300 "$E2E_TMP/err")"
        return
    fi
    tr '\0' '\n' <"$E2E_TMP/out" | LC_ALL=C sort >"$E2E_TMP/got"
    for p in "$@"; do printf '%s\n' "$prefix/$p"; done | LC_ALL=C sort >"$E2E_TMP/want"
    if ! cmp -s "$E2E_TMP/want" "$E2E_TMP/got"; then
        bad "find $where '$query':"$'\n'"$(diff "$E2E_TMP/want" "$E2E_TMP/got" | grep -a '^[<>]' |
            sed 's/^</  missing:/; s/^>/  unexpected:/' | head -n 20)"
    fi
}

# expect QUERY [PATH...]: the same over the whole mount, PATH relative to it.
expect() {
    expect_in "$MNT" "$MNT" "$@"
}

wait_index "$VOL"

# ---------------------------------------------------------------- tags and fields
note "tags, xattrs and built-in fields"
mkdir -p "$MNT/docs" "$MNT/pics" "$MNT/other"
printf 'hello\n' >"$MNT/docs/report-q1.txt"
head -c 20000 /dev/zero >"$MNT/docs/summary.md"
truncate -s 3M "$MNT/pics/beach.jpg"
truncate -s 100K "$MNT/pics/city.jpg"
printf '0123456789' >"$MNT/pics/old.png"
: >"$MNT/other/notes.txt"
ln -s ../docs "$MNT/other/link"
mkfifo "$MNT/other/fifo"
must setfattr -n user.xdg.tags -v "work, urgent ,q1" "$MNT/docs/report-q1.txt"
must setfattr -n user.project -v apollo "$MNT/docs/report-q1.txt"
must setfattr -n user.tag.review "$MNT/docs/summary.md"
must setfattr -n user.comment -v "the quarterly report for the board" "$MNT/docs/summary.md"
must setfattr -n user.xdg.tags -v "beach,sunset" "$MNT/pics/beach.jpg"
must setfattr -n user.annotations -v '{"bicycles":4,"people":["ann","bob"],"camera":{"model":"x100","iso":400},"edited":true,"rating":4.5}' "$MNT/pics/beach.jpg"
must setfattr -n user.annotations -v '{"bicycles":1,"people":["cy"],"camera":{"model":"z5","iso":1600},"edited":false}' "$MNT/pics/city.jpg"
must setfattr -n user.tag.archive "$MNT/pics/old.png"
must setfattr -n user.xdg.tags -v beach "$MNT/pics/old.png"
must setfattr -n user.xdg.tags -v album "$MNT/pics"
must setfattr -n user.note -v "" "$MNT/docs/summary.md"
must setfattr -n user.note -v hi "$MNT/pics/city.jpg"
chmod 600 "$MNT/other/notes.txt"
chown 65534:65534 "$MNT/other/notes.txt"
touch -d 2020-06-01T12:00:00Z "$MNT/pics/old.png"
NOGROUP=$(getent group 65534 | cut -d: -f1)
NOBODY=$(getent passwd 65534 | cut -d: -f1)

expect tag:work docs/report-q1.txt
expect tag:urgent docs/report-q1.txt
expect tag:q1 docs/report-q1.txt
expect 'tag:"urgent "'
expect tag:beach pics/beach.jpg pics/old.png
expect tag:sunset pics/beach.jpg
expect tag:review docs/summary.md
expect tag:archive pics/old.png
expect tag:album pics
expect project:apollo docs/report-q1.txt
expect project:apol
expect user.project:apollo docs/report-q1.txt
expect 'note:""' docs/summary.md
expect note:hi pics/city.jpg
expect '-note:"" note:hi' pics/city.jpg
expect 'annotations.bicycles:>3' pics/beach.jpg
expect 'annotations.bicycles:4' pics/beach.jpg
expect 'user.annotations.bicycles:4' pics/beach.jpg
expect 'annotations.bicycles:1..4' pics/beach.jpg pics/city.jpg
expect 'annotations.bicycles:<2' pics/city.jpg
expect 'annotations.bicycles:<1'
expect annotations.people:bob pics/beach.jpg
expect annotations.people:cy pics/city.jpg
expect annotations.camera.model:z5 pics/city.jpg
expect 'annotations.camera.iso:>=400' pics/beach.jpg pics/city.jpg
expect 'annotations.camera.iso:>400' pics/city.jpg
expect annotations.edited:true pics/beach.jpg
expect annotations.edited:false pics/city.jpg
expect annotations.rating:4.5 pics/beach.jpg
expect 'annotations.rating:>4' pics/beach.jpg
expect quarterly docs/summary.md
expect '"quarterly report"' docs/summary.md
expect '"report quarterly"'
expect report docs/report-q1.txt docs/summary.md
expect REPORT docs/report-q1.txt docs/summary.md
expect '"report-q1"' docs/report-q1.txt
expect apollo docs/report-q1.txt
expect bicycles pics/beach.jpg pics/city.jpg
expect x100 pics/beach.jpg
expect pics pics pics/beach.jpg pics/city.jpg pics/old.png
expect name:report docs/report-q1.txt
expect name:q1 docs/report-q1.txt
expect name:txt docs/report-q1.txt other/notes.txt
expect "name:*.jpg" pics/beach.jpg pics/city.jpg
expect "name:?ity.jpg" pics/city.jpg
expect "name:*.JPG"
expect path:/pics pics pics/beach.jpg pics/city.jpg pics/old.png
expect path:/pics/ pics pics/beach.jpg pics/city.jpg pics/old.png
expect path:/pics/beach.jpg pics/beach.jpg
expect path:/pic
expect type:d docs pics other
expect type:l other/link
expect type:p other/fifo
expect type:f docs/report-q1.txt docs/summary.md pics/beach.jpg pics/city.jpg pics/old.png other/notes.txt
expect 'size:>1M' pics/beach.jpg
expect 'size:>=100K' pics/beach.jpg pics/city.jpg
expect 'size:100K' pics/city.jpg
expect 'type:f size:1K..50K' docs/summary.md
expect 'type:f size:<11' docs/report-q1.txt pics/old.png other/notes.txt
expect 'mtime:<2021-01-01' pics/old.png
expect 'mtime:2020-06-01' pics/old.png
expect 'mtime:2020-05-01..2020-06-01' pics/old.png
expect 'mtime:>2020-06-01 type:f' docs/report-q1.txt docs/summary.md pics/beach.jpg pics/city.jpg other/notes.txt
expect 'mtime:<1d type:f' docs/report-q1.txt docs/summary.md pics/beach.jpg pics/city.jpg other/notes.txt
expect 'mtime:>30d' pics/old.png
expect "user:$NOBODY" other/notes.txt
expect uid:65534 other/notes.txt
expect gid:65534 other/notes.txt
expect "group:$NOGROUP" other/notes.txt
expect mode:600 other/notes.txt
expect 'mode:644 type:f' docs/report-q1.txt docs/summary.md pics/beach.jpg pics/city.jpg pics/old.png
expect 'nlink:>1 type:f'
expect 'tag:beach OR tag:work' pics/beach.jpg pics/old.png docs/report-q1.txt
expect 'tag:beach -tag:archive' pics/beach.jpg
expect 'tag:beach NOT tag:archive' pics/beach.jpg
expect 'tag:beach AND tag:sunset' pics/beach.jpg
expect '(tag:work OR tag:sunset) name:jpg' pics/beach.jpg
expect 'tag:work OR tag:sunset name:jpg' docs/report-q1.txt pics/beach.jpg
expect 'NOT (type:f OR type:d)' other/link other/fifo
expect '-type:f -type:d -type:l' other/fifo

# PATH arguments: a subtree through the mount, two subtrees, the volume, the
# current directory.
expect_in "$MNT/pics" "$MNT" bicycles pics/beach.jpg pics/city.jpg
expect_in "$MNT/docs" "$MNT" bicycles
expect_in "$MNT/pics" "$MNT" 'type:d' pics
expect_in "$VOL" "" tag:beach pics/beach.jpg pics/old.png
fnd "$MNT/docs" "$MNT/other" -0 type:f
got=$(tr '\0' '\n' <"$E2E_TMP/out" | LC_ALL=C sort | tr '\n' ' ')
[ "$RC" -eq 0 ] && [ "$got" = "$MNT/docs/report-q1.txt $MNT/docs/summary.md $MNT/other/notes.txt " ] ||
    bad "find with two PATHs: exit $RC, got '$got'"
got=$(cd "$MNT/pics" && "$METAFS" find --consistent type:f 2>&1 | LC_ALL=C sort | tr '\n' ' ') || true
[ "$got" = "$MNT/pics/beach.jpg $MNT/pics/city.jpg $MNT/pics/old.png " ] ||
    bad "find without PATH in $MNT/pics: got '$got'"

# A field seen for the first time must be known to a --consistent query
# issued right after the change.
misses=0
for i in $(seq 1 20); do
    : >"$MNT/other/fresh$i"
    setfattr -n "user.fresh$i" -v yes "$MNT/other/fresh$i"
    fnd "$MNT" -0 "fresh$i:yes"
    [ "$RC" -eq 0 ] && [ "$(tr '\0' '\n' <"$E2E_TMP/out")" = "$MNT/other/fresh$i" ] || misses=$((misses + 1))
    [ "$RC" -eq 0 ] || last=$(cat "$E2E_TMP/err")
    rm "$MNT/other/fresh$i"
done
[ "$misses" -eq 0 ] ||
    bad "a new xattr field queried with --consistent right after setfattr failed $misses of 20 times: ${last:-wrong answer}"

# ---------------------------------------------------------------- output formats
note "output formats, sorting, limits"
fnd "$MNT" -0 type:f
python3 - "$E2E_TMP/out" "$MNT" <<'PY' || bad "-0 output: see above"
import os, sys
data = open(sys.argv[1], "rb").read()
assert data.endswith(b"\0"), "not NUL-terminated: %r" % data[-20:]
paths = data.split(b"\0")[:-1]
assert len(paths) == len(set(paths)) == 6, paths
for p in paths:
    assert os.path.isfile(p), p
PY

fnd "$MNT" --json 'path:/pics OR tag:work'
python3 - "$E2E_TMP/out" "$MNT" <<'PY' || bad "--json output: see above"
import json, os, stat, sys, time
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
mnt = sys.argv[2]
assert len(lines) == 5, lines
seen = {}
for line in lines:
    o = json.loads(line)
    p = o["path"]
    st = os.lstat(p)
    seen[p] = o
    for k in ("path", "ino", "type", "size", "mode", "uid", "gid", "user", "group", "nlink",
              "atime", "mtime", "ctime", "score"):
        assert k in o, (k, line)
    assert o["ino"] == st.st_ino, (p, o["ino"], st.st_ino)
    assert o["type"] == ("dir" if stat.S_ISDIR(st.st_mode) else "file"), (p, o["type"])
    assert o["size"] == st.st_size, (p, o["size"], st.st_size)
    assert o["mode"] == "%04o" % stat.S_IMODE(st.st_mode), (p, o["mode"])
    assert (o["uid"], o["gid"], o["nlink"]) == (st.st_uid, st.st_gid, st.st_nlink), (p, o)
    assert o["user"] == "root" and o["group"] == "root", (p, o)
    want = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(st.st_mtime))
    assert o["mtime"].startswith(want), (p, o["mtime"], want)
    assert isinstance(o["score"], (int, float)), o
b = seen[mnt + "/pics/beach.jpg"]
x = b.get("xattrs", {})
assert x.get("annotations.bicycles") == 4, x
assert x.get("annotations.people") == ["ann", "bob"], x
assert x.get("annotations.camera.model") == "x100", x
assert x.get("annotations.edited") is True, x
assert x.get("annotations.rating") == 4.5, x
assert sorted(b.get("tags", [])) == ["beach", "sunset"], b
assert seen[mnt + "/pics"].get("tags") == ["album"], seen[mnt + "/pics"]
r = seen[mnt + "/docs/report-q1.txt"]
assert sorted(r.get("tags", [])) == ["q1", "urgent", "work"], r
assert r.get("xattrs", {}).get("project") == "apollo", r
assert seen[mnt + "/pics/old.png"]["mtime"].startswith("2020-06-01T12:00:00"), seen[mnt + "/pics/old.png"]
PY

fnd "$MNT" -l 'type:f OR type:d OR type:l'
n=0
while IFS= read -r line; do
    n=$((n + 1))
    re='^([-dlpscb][-rwxsStT]{9}) +([0-9]+) +([^ ]+) +([^ ]+) +([0-9]+) ([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}) (/.*)$'
    if [[ ! $line =~ $re ]]; then
        bad "-l line does not look like ls -l: '$line'"
        continue
    fi
    p=${BASH_REMATCH[7]}
    want="$(stat -c '%A %h %U %G %s' "$p") $(date -d "@$(stat -c %Y "$p")" '+%Y-%m-%d %H:%M')"
    have="${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[3]} ${BASH_REMATCH[4]} ${BASH_REMATCH[5]} ${BASH_REMATCH[6]}"
    [ "$want" = "$have" ] || bad "-l for $p: '$have', stat says '$want'"
done <"$E2E_TMP/out"
[ "$n" -eq 10 ] || bad "-l printed $n lines, expected 10"

fnd "$MNT" --count type:f
[ "$RC" -eq 0 ] && [ "$(cat "$E2E_TMP/out")" = 6 ] || bad "--count type:f printed '$(cat "$E2E_TMP/out")' (exit $RC), expected 6"
fnd "$MNT" --count tag:nosuchtag
[ "$RC" -eq 0 ] && [ "$(cat "$E2E_TMP/out")" = 0 ] || bad "--count of nothing printed '$(cat "$E2E_TMP/out")' (exit $RC)"
fnd "$MNT" tag:nosuchtag
[ "$RC" -eq 0 ] && [ ! -s "$E2E_TMP/out" ] || bad "a query without results: exit $RC, output '$(cat "$E2E_TMP/out")'"

# order_is ARGS... -- PATHS...: the output of find ARGS is exactly PATHS in order.
order_is() {
    local args=() p
    while [ "$1" != -- ]; do args+=("$1"); shift; done
    shift
    for p in "$@"; do printf '%s\n' "$MNT/$p"; done >"$E2E_TMP/want"
    fnd "$MNT" "${args[@]}"
    [ "$RC" -eq 0 ] && cmp -s "$E2E_TMP/want" "$E2E_TMP/out" ||
        bad "find ${args[*]} (exit $RC) printed:"$'\n'"$(cat "$E2E_TMP/out")"$'\n'"expected:"$'\n'"$(cat "$E2E_TMP/want")"
}
order_is --sort size type:f -- pics/beach.jpg pics/city.jpg docs/summary.md pics/old.png docs/report-q1.txt other/notes.txt
order_is --sort size --reverse type:f -- other/notes.txt docs/report-q1.txt pics/old.png docs/summary.md pics/city.jpg pics/beach.jpg
order_is --sort size --limit 2 type:f -- pics/beach.jpg pics/city.jpg
order_is --limit 0 type:f --
order_is --sort name type:f -- pics/beach.jpg pics/city.jpg other/notes.txt pics/old.png docs/report-q1.txt docs/summary.md
order_is --sort name --reverse type:f -- docs/summary.md docs/report-q1.txt pics/old.png other/notes.txt pics/city.jpg pics/beach.jpg
order_is --sort path type:f -- docs/report-q1.txt docs/summary.md other/notes.txt pics/beach.jpg pics/city.jpg pics/old.png
order_is --sort path --reverse --limit 2 type:f -- pics/old.png pics/city.jpg
order_is --sort mtime --reverse --limit 1 type:f -- pics/old.png
fnd "$MNT" --sort mtime type:f
python3 - "$E2E_TMP/out" <<'PY' || bad "--sort mtime is not newest first: $(cat "$E2E_TMP/out")"
import os, sys
ps = open(sys.argv[1]).read().splitlines()
ts = [os.lstat(p).st_mtime_ns for p in ps]
assert len(ps) == 6 and ts == sorted(ts, reverse=True), list(zip(ps, ts))
PY
# the name is worth more than the text of an xattr
fnd "$MNT" report
[ "$(head -n 1 "$E2E_TMP/out")" = "$MNT/docs/report-q1.txt" ] ||
    bad "score order: 'report' ranked '$(head -n 1 "$E2E_TMP/out")' first, not the file named report"
fnd "$MNT" --sort bogus type:f
[ "$RC" -eq 2 ] || bad "--sort bogus exited $RC, expected 2"
fnd "$MNT" --limit -1 type:f
[ "$RC" -eq 2 ] || bad "--limit -1 exited $RC, expected 2"

# ---------------------------------------------------------------- renames, deletions, links
note "renames, deletions, hard links"
mkdir -p "$MNT/proj/sub"
for i in $(seq 1 20); do
    echo "$i" >"$MNT/proj/sub/f$i.dat"
    setfattr -n user.xdg.tags -v moveme "$MNT/proj/sub/f$i.dat"
done
echo top >"$MNT/proj/top.dat"
setfattr -n user.tag.moveme "$MNT/proj/top.dat"
all_sub() { local i; for i in $(seq 1 20); do printf '%s/f%d.dat\n' "$1" "$i"; done; }
mapfile -t want < <(all_sub proj/sub)
expect tag:moveme "${want[@]}" proj/top.dat
mv "$MNT/proj" "$MNT/renamed"
mapfile -t want < <(all_sub renamed/sub)
expect tag:moveme "${want[@]}" renamed/top.dat
expect path:/proj
expect proj
expect name:proj
expect 'renamed type:d' renamed renamed/sub
expect_in "$MNT/renamed/sub" "$MNT" 'name:f1*' renamed/sub/f1.dat renamed/sub/f10.dat renamed/sub/f11.dat \
    renamed/sub/f12.dat renamed/sub/f13.dat renamed/sub/f14.dat renamed/sub/f15.dat renamed/sub/f16.dat \
    renamed/sub/f17.dat renamed/sub/f18.dat renamed/sub/f19.dat
mv "$MNT/renamed/sub" "$MNT/docs/sub2"
mapfile -t want < <(all_sub docs/sub2)
expect tag:moveme "${want[@]}" renamed/top.dat
expect path:/renamed renamed renamed/top.dat
mv "$MNT/docs/sub2/f1.dat" "$MNT/docs/sub2/f2.dat"
mapfile -t want < <(all_sub docs/sub2 | grep -v '/f1.dat$')
expect tag:moveme "${want[@]}" renamed/top.dat
[ "$(cat "$MNT/docs/sub2/f2.dat")" = 1 ] || fail "rename over a file did not replace it"
rm -r "$MNT/docs/sub2"
expect tag:moveme renamed/top.dat
expect path:/docs/sub2
expect 'name:f1*'

ln "$MNT/pics/beach.jpg" "$MNT/docs/beach-copy.jpg"
expect tag:sunset pics/beach.jpg docs/beach-copy.jpg
expect 'nlink:>1 type:f' pics/beach.jpg docs/beach-copy.jpg
expect 'annotations.bicycles:4' pics/beach.jpg docs/beach-copy.jpg
expect path:/docs/beach-copy.jpg docs/beach-copy.jpg
expect "name:beach-*" docs/beach-copy.jpg
expect name:copy docs/beach-copy.jpg
expect_in "$MNT/docs" "$MNT" tag:sunset docs/beach-copy.jpg
rm "$MNT/pics/beach.jpg"
expect tag:sunset docs/beach-copy.jpg
expect 'nlink:>1 type:f'
expect 'name:beach*' docs/beach-copy.jpg

# ---------------------------------------------------------------- malformed queries
note "malformed queries and errors"
for q in 'a OR' '(a' 'size:' 'size:>abc' 'nosuchfield:1' 'annotations.bicycles:>many' 'mode:999' 'type:x' \
    'uid:-1' 'name:a/b' 'path:relative' '"unclosed' 'a )' 'NOT'; do
    fnd "$MNT" "$q"
    lines=$(wc -l <"$E2E_TMP/err")
    if [ "$RC" -ne 2 ] || [ "$lines" -ne 1 ] || [ -s "$E2E_TMP/out" ]; then
        bad "malformed query '$q': exit $RC, $lines stderr lines: $(head -c 300 "$E2E_TMP/err")"
    fi
done
for q in 'a OR' '(a' 'size:' 'size:>abc' 'nosuchfield:1'; do
    fnd "$MNT" "$q"
    grep -qi column "$E2E_TMP/err" || bad "the error for '$q' names no column: $(cat "$E2E_TMP/err")"
done
fnd "$E2E_TMP/no-such-volume" tag:beach
[ "$RC" -eq 1 ] || bad "find in a missing path exited $RC: $(cat "$E2E_TMP/err")"
mkdir "$E2E_TMP/plain"
fnd "$E2E_TMP/plain" tag:beach
[ "$RC" -eq 1 ] || bad "find in a directory outside metafs exited $RC: $(cat "$E2E_TMP/err")"
new_volume "$E2E_TMP/vol-unindexed"
fnd "$E2E_TMP/vol-unindexed" tag:beach
[ "$RC" -eq 1 ] && grep -qi index "$E2E_TMP/err" ||
    bad "find in a volume without an index exited $RC: $(cat "$E2E_TMP/err")"

# ---------------------------------------------------------------- awkward input
note "invalid JSON, binary, big and non-UTF-8 values and names"
mkdir "$MNT/bad"
echo j >"$MNT/bad/json.txt"
must setfattr -n user.annotations -v '{"bicycles": 4, broken' "$MNT/bad/json.txt"
must setfattr -n user.xdg.tags -v badinput "$MNT/bad/json.txt"
echo b >"$MNT/bad/binary.bin"
must setfattr -n user.blob -v 0x00ff7f80fe0a00c3 "$MNT/bad/binary.bin"
must setfattr -n user.tag.badinput "$MNT/bad/binary.bin"
echo big >"$MNT/bad/big.txt"
python3 - "$MNT/bad/big.txt" <<'PY' || fail "setting a 60 KiB xattr failed"
import os, sys
v = ("filler " * 8800)[: 60 * 1024 - 20] + " needleword"
os.setxattr(sys.argv[1], "user.big", v.encode())
os.setxattr(sys.argv[1], "user.xdg.tags", b"badinput")
os.setxattr(sys.argv[1], "user.deep", b'{"a":' * 40 + b"1" + b"}" * 40)
os.setxattr(sys.argv[1], "user.nested", b"[" * 200 + b"]" * 200)
PY
python3 - "$MNT/bad" <<'PY' || fail "creating names that are not UTF-8 failed"
import os, sys
d = os.fsencode(sys.argv[1])
for name in (b"caf\xe9-\xff\xfe.txt", b"line\nbreak.txt"):
    p = d + b"/" + name
    open(p, "w").close()
    os.setxattr(p, "user.xdg.tags", b"odd")
os.setxattr(d + b"/caf\xe9-\xff\xfe.txt", "user.latin", b"\xe9t\xe9")
PY
: >"$MNT/bad/after.txt"
must setfattr -n user.tag.later "$MNT/bad/after.txt"
expect tag:later bad/after.txt
expect tag:badinput bad/json.txt bad/binary.bin bad/big.txt
expect name:binary bad/binary.bin
expect needleword bad/big.txt
expect 'annotations.bicycles:4' docs/beach-copy.jpg
expect 'annotations:"{\"bicycles\": 4, broken"' bad/json.txt
expect broken bad/json.txt
fnd "$MNT" -0 tag:odd
python3 - "$E2E_TMP/out" "$MNT" <<'PY' || bad "names that are not UTF-8 or hold a newline: see above"
import sys, os
got = sorted(open(sys.argv[1], "rb").read().split(b"\0")[:-1])
d = os.fsencode(sys.argv[2]) + b"/bad/"
want = sorted([d + b"caf\xe9-\xff\xfe.txt", d + b"line\nbreak.txt"])
assert got == want, (got, want)
PY
fnd "$MNT" --json tag:odd
python3 - "$E2E_TMP/out" <<'PY' || bad "--json with a name that is not UTF-8: see above"
import json, sys
lines = open(sys.argv[1], "rb").read().decode("utf-8").splitlines()
assert len(lines) == 2, lines
for l in lines:
    json.loads(l)
PY
# the indexer still follows changes
: >"$MNT/bad/later2.txt"
must setfattr -n user.tag.later "$MNT/bad/later2.txt"
expect tag:later bad/after.txt bad/later2.txt
grep -q 'indexer stopped' "$VOL/metafs.log" 2>/dev/null &&
    bad "the daemon's indexer stopped on bad input: $(grep 'indexer stopped' "$VOL/metafs.log" | head -n 3)"

# ---------------------------------------------------------------- the indexer outside the daemon
note "metafs indexer on a volume mounted with -o noindex"
VOL2=$E2E_TMP/vol2
MNT2=$E2E_TMP/mnt2
new_volume "$VOL2"
mount_volume "$VOL2" "$MNT2" -o noindex
mkdir "$MNT2/s"
sleep 1
[ ! -e "$VOL2/index.sqlite" ] || bad "a volume mounted with -o noindex got an index from the daemon"
fnd "$MNT2" type:d
[ "$RC" -eq 1 ] || bad "find on a noindex mount without an index exited $RC"
must "$METAFS" indexer "$MNT2" --once
t0=$(now_ms)
python3 - "$MNT2/s" <<'PY' || fail "making changes on $MNT2 failed"
import os, sys
d = sys.argv[1]
for i in range(700):
    p = "%s/f%04d" % (d, i)
    with open(p, "w") as f:
        f.write("x" * (i % 50))
    os.setxattr(p, "user.xdg.tags", b"stream")
for i in range(0, 700, 3):
    os.rename("%s/f%04d" % (d, i), "%s/r%04d" % (d, i))
for i in range(1, 700, 7):
    if os.path.exists("%s/f%04d" % (d, i)):
        os.unlink("%s/f%04d" % (d, i))
for i in range(2, 700, 5):
    p = "%s/f%04d" % (d, i)
    if os.path.exists(p):
        os.setxattr(p, "user.xdg.tags", b"stream,changed")
PY
note "~2000 changes in $(( $(now_ms) - t0 )) ms"
out=$("$METAFS" indexer "$MNT2" --once 2>&1) || bad "metafs indexer --once failed: $out"
applied=$(sed -n 's/^applied \([0-9]*\) changelog records.*/\1/p' <<<"$out")
[ "${applied:-0}" -ge 1500 ] || bad "metafs indexer --once applied '${applied:-?}' records, expected about 2000: $out"
mapfile -t want < <(cd "$MNT2" && find s -type f | LC_ALL=C sort)
expect_in "$MNT2" "$MNT2" tag:stream "${want[@]}"
mapfile -t want < <(cd "$MNT2" && python3 -c '
import os
for f in sorted(os.listdir("s")):
    if b"changed" in os.getxattr("s/" + f, "user.xdg.tags"):
        print("s/" + f)')
[ "${#want[@]}" -gt 50 ] || fail "expected more files tagged 'changed', found ${#want[@]}"
expect_in "$MNT2" "$MNT2" tag:changed "${want[@]}"
expect_in "$MNT2" "$MNT2" 'name:r*' $(cd "$MNT2" && ls -d s/r*)

note "metafs indexer killed with SIGKILL during a burst of 5000 changes"
"$METAFS" indexer "$MNT2" >"$E2E_TMP/indexer.log" 2>&1 &
IPID=$!
track_pid "$IPID"
mkdir "$MNT2/burst"
cat >"$E2E_TMP/burst.py" <<'PY'
import os, sys
d = sys.argv[1]
for i in range(5000):
    p = "%s/b%05d" % (d, i)
    open(p, "w").close()
    if i % 10 == 0:
        os.setxattr(p, "user.xdg.tags", b"burst")
PY
python3 "$E2E_TMP/burst.py" "$MNT2/burst" >"$E2E_TMP/burst.log" 2>&1 &
BPID=$!
killed=0
for _ in $(seq 1 300); do
    n=$( (cd / && "$METAFS" find "$MNT2/burst" --count 'type:f') 2>/dev/null || echo 0)
    if [ "$n" -ge 500 ]; then
        # mid-stream for the indexer, whether or not the burst has ended
        [ "$n" -lt 5000 ] || break
        kill -9 "$IPID" && killed=1
        { wait "$IPID"; } 2>/dev/null || true
        break
    fi
    sleep 0.05
done
wait "$BPID" || fail "the burst of changes failed: $(cat "$E2E_TMP/burst.log")"
[ "$killed" -eq 1 ] || fail "could not kill the indexer while it applied the burst (indexed so far: ${n:-?})"
note "killed the indexer with ${n} of 5000 burst files indexed"
out=$("$METAFS" indexer "$MNT2" --once 2>&1) || bad "metafs indexer --once after SIGKILL failed: $out"
fnd "$MNT2/burst" -0 'type:f'
python3 - "$E2E_TMP/out" "$MNT2" <<'PY' || bad "after SIGKILL and a restart, the burst is not indexed exactly once: see above"
import collections, sys
got = collections.Counter(open(sys.argv[1], "rb").read().split(b"\0")[:-1])
want = {("%s/burst/b%05d" % (sys.argv[2], i)).encode() for i in range(5000)}
missing = sorted(want - set(got))
extra = sorted(set(got) - want)
dups = sorted(p for p, c in got.items() if c > 1)
assert not missing and not extra and not dups, (len(missing), missing[:5], extra[:5], len(dups), dups[:5])
PY
fnd "$MNT2" --count tag:burst
[ "$(cat "$E2E_TMP/out")" = 500 ] || bad "tag:burst counts '$(cat "$E2E_TMP/out")' after the restart, expected 500"
unmount_volume "$MNT2"

# ---------------------------------------------------------------- a deleted or rebuilt index
note "the index deleted while mounted"
rm "$VOL/index.sqlite"
t0=$(now_ms)
ok=0
while [ $(( $(now_ms) - t0 )) -lt 10000 ]; do
    fnd "$MNT" --timeout 2 -0 tag:sunset
    if [ "$RC" -eq 0 ] && [ "$(tr '\0' '\n' <"$E2E_TMP/out")" = "$MNT/docs/beach-copy.jpg" ]; then
        ok=1
        break
    fi
    sleep 0.2
done
[ "$ok" -eq 1 ] || bad "10 s after index.sqlite was deleted, find --consistent tag:sunset still fails (exit $RC): $(cat "$E2E_TMP/err" "$E2E_TMP/out" | head -c 300)"
note "answers again $(( $(now_ms) - t0 )) ms after the index was deleted"
: >"$MNT/docs/after-delete.txt"
setfattr -n user.tag.fresh "$MNT/docs/after-delete.txt"
expect tag:fresh docs/after-delete.txt
expect tag:beach pics/old.png docs/beach-copy.jpg
expect tag:moveme renamed/top.dat

note "metafs reindex while mounted"
out=$("$METAFS" reindex "$MNT" 2>&1) || bad "metafs reindex $MNT failed: $out"
expect tag:beach pics/old.png docs/beach-copy.jpg
expect tag:work docs/report-q1.txt
mkdir "$MNT/reidx"
# writes until told to stop, then says how many files it made
cat >"$E2E_TMP/writer.py" <<'PY'
import os, sys, time
d, round_, stop, out = sys.argv[1:5]
n = 0
while not os.path.exists(stop):
    p = "%s/w%s-%05d" % (d, round_, n)
    open(p, "w").close()
    os.setxattr(p, "user.xdg.tags", b"reidx")
    n += 1
    time.sleep(0.002)
open(out, "w").write("%d\n" % n)
PY
written=0
errors=0
wrong=0
last=""
for round in 1 2 3; do
    rm -f "$E2E_TMP/stop"
    python3 "$E2E_TMP/writer.py" "$MNT/reidx" "$round" "$E2E_TMP/stop" "$E2E_TMP/written" >"$E2E_TMP/writer.log" 2>&1 &
    WPID=$!
    sleep 0.3
    out=$("$METAFS" reindex "$MNT" 2>&1) || bad "metafs reindex $MNT during writes (round $round) failed: $out"
    for i in 1 2 3 4 5; do
        fnd "$MNT" --timeout 5 -0 tag:work
        if [ "$RC" -ne 0 ]; then
            errors=$((errors + 1))
            last=$(head -c 300 "$E2E_TMP/err")
        elif [ "$(tr '\0' '\n' <"$E2E_TMP/out")" != "$MNT/docs/report-q1.txt" ]; then
            wrong=$((wrong + 1))
            last="answered '$(tr '\0' ' ' <"$E2E_TMP/out" | head -c 200)'"
        fi
        sleep 0.2
    done
    touch "$E2E_TMP/stop"
    wait "$WPID" || fail "the writer failed: $(cat "$E2E_TMP/writer.log")"
    written=$((written + $(cat "$E2E_TMP/written")))
done
[ "$errors" -eq 0 ] && [ "$wrong" -eq 0 ] ||
    bad "during and after metafs reindex under writes, $errors of 15 queries for tag:work failed and $wrong answered wrongly; last: $last"
fnd "$MNT" --count tag:reidx
[ "$RC" -eq 0 ] && [ "$(cat "$E2E_TMP/out")" = "$written" ] ||
    bad "after metafs reindex during writes, tag:reidx counts '$(cat "$E2E_TMP/out")' (exit $RC: $(head -c 200 "$E2E_TMP/err")), expected $written"
t0=$(now_ms)
while [ $(( $(now_ms) - t0 )) -lt 10000 ]; do
    fnd "$MNT" --timeout 2 --count tag:reidx
    [ "$RC" -eq 0 ] && [ "$(cat "$E2E_TMP/out")" = "$written" ] && break
    sleep 0.2
done
[ "$RC" -eq 0 ] && [ "$(cat "$E2E_TMP/out")" = "$written" ] ||
    bad "10 s after metafs reindex during writes, tag:reidx still counts '$(cat "$E2E_TMP/out")' (exit $RC)"
expect tag:sunset docs/beach-copy.jpg
expect 'annotations.bicycles:1..4' docs/beach-copy.jpg pics/city.jpg

# ---------------------------------------------------------------- other users
note "what another user is shown"
unmount_volume "$MNT"
VOL3=$E2E_TMP/vol3
MNT3=$E2E_TMP/mnt3
new_volume "$VOL3"
mount_volume "$VOL3" "$MNT3" -o allow_other
wait_index "$VOL3"
# nobody must reach the mount point: the temporary directory is private. The
# volume directory stays root-only (0750, the default): nobody cannot read the
# index and searches through the daemon's search service.
chmod 711 "$E2E_TMP"
M=$MNT3
mkdir "$M/pub" "$M/secret" "$M/secret/sub" "$M/noread" "$M/noexec" "$M/grp" "$M/own" "$M/ownnoperm"
for f in pub/a.txt secret/s.txt secret/hl.txt secret/sub/x.txt noread/n.txt noexec/e.txt grp/g.txt own/o.txt ownnoperm/z.txt; do
    echo "$f" >"$M/$f"
done
ln "$M/secret/hl.txt" "$M/pub/link.txt"
chmod 755 "$M/pub" "$M/secret/sub"
chmod 700 "$M/secret"
chmod 711 "$M/noread"
chmod 744 "$M/noexec"
chown root:65534 "$M/grp"
chmod 750 "$M/grp"
chown 65534:0 "$M/own" "$M/ownnoperm"
chmod 700 "$M/own"
chmod 077 "$M/ownnoperm"
for p in pub secret secret/sub noread noexec grp own ownnoperm pub/a.txt secret/s.txt secret/hl.txt \
    secret/sub/x.txt noread/n.txt noexec/e.txt grp/g.txt own/o.txt ownnoperm/z.txt; do
    setfattr -n user.tag.perm "$M/$p"
done
ALL=(pub secret secret/sub noread noexec grp own ownnoperm pub/a.txt pub/link.txt secret/s.txt secret/hl.txt
    secret/sub/x.txt noread/n.txt noexec/e.txt grp/g.txt own/o.txt ownnoperm/z.txt)
VISIBLE=(pub secret noread noexec grp own ownnoperm pub/a.txt pub/link.txt grp/g.txt own/o.txt)
expect_in "$M" "$M" tag:perm "${ALL[@]}"
# as_user GROUPS ARGS...: metafs find --consistent ARGS as uid 65534 with the
# supplementary groups GROUPS (a comma list, or "" for none).
as_user() {
    local groups=$1
    shift
    RC=0
    if [ -n "$groups" ]; then set -- --groups="$groups" "$@"; else set -- --clear-groups "$@"; fi
    (cd / && setpriv --reuid=65534 --regid=65534 "${@:1:1}" "$METAFS" find --consistent "${@:2}") \
        >"$E2E_TMP/out" 2>"$E2E_TMP/err" || RC=$?
}
as_nobody() {
    as_user "" "$@"
}
setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$VOL3/index.sqlite" &&
    fail "nobody can read the index file: these checks would not go through the search service"
as_nobody "$M" tag:perm
LC_ALL=C sort "$E2E_TMP/out" >"$E2E_TMP/got"
for p in "${VISIBLE[@]}"; do echo "$M/$p"; done | LC_ALL=C sort >"$E2E_TMP/want"
[ "$RC" -eq 0 ] && cmp -s "$E2E_TMP/want" "$E2E_TMP/got" ||
    bad "what nobody is shown (exit $RC: $(head -c 200 "$E2E_TMP/err")):"$'\n'"$(diff "$E2E_TMP/want" "$E2E_TMP/got" |
        grep '^[<>]' | sed 's/^</  missing:/; s/^>/  unexpected:/')"
as_nobody "$M" --count tag:perm
[ "$(cat "$E2E_TMP/out")" = "${#VISIBLE[@]}" ] || bad "--count as nobody: '$(cat "$E2E_TMP/out")', expected ${#VISIBLE[@]}"
as_nobody "$M/secret" tag:perm
[ "$RC" -eq 0 ] && [ "$(cat "$E2E_TMP/out")" = "$M/secret" ] ||
    bad "nobody searching below secret/ (exit $RC) was shown: $(cat "$E2E_TMP/out" "$E2E_TMP/err")"
as_nobody "$M" name:hl
[ "$RC" -eq 0 ] && [ ! -s "$E2E_TMP/out" ] || bad "name:hl (only the name of the link in secret/) showed nobody: $(cat "$E2E_TMP/out")"
as_nobody "$M" --json tag:perm
[ "$(wc -l <"$E2E_TMP/out")" -eq "${#VISIBLE[@]}" ] || bad "--json as nobody printed $(wc -l <"$E2E_TMP/out") lines"
as_nobody "$M" -l --sort path tag:perm
[ "$(wc -l <"$E2E_TMP/out")" -eq "${#VISIBLE[@]}" ] && grep -q "^-rw-r--r-- .* $M/pub/a.txt\$" "$E2E_TMP/out" ||
    bad "-l as nobody: $(head -c 300 "$E2E_TMP/out" "$E2E_TMP/err")"

note "the search service: groups, read-your-writes, errors"
# supplementary groups count, as the kernel knows them (not as claimed)
mkdir "$M/team"
echo t >"$M/team/t.txt"
chown root:4242 "$M/team"
chmod 750 "$M/team"
setfattr -n user.tag.team "$M/team/t.txt"
as_nobody "$M" tag:team
[ "$RC" -eq 0 ] && [ ! -s "$E2E_TMP/out" ] || bad "nobody outside group 4242 was shown: $(cat "$E2E_TMP/out" "$E2E_TMP/err")"
as_user 4242 "$M" tag:team
[ "$RC" -eq 0 ] && [ "$(cat "$E2E_TMP/out")" = "$M/team/t.txt" ] ||
    bad "nobody in group 4242 was shown (exit $RC): $(cat "$E2E_TMP/out" "$E2E_TMP/err")"
# a change made just before is found with --consistent
echo w >"$M/pub/fresh.txt"
setfattr -n user.tag.fresh "$M/pub/fresh.txt"
as_nobody "$M" tag:fresh
[ "$RC" -eq 0 ] && [ "$(cat "$E2E_TMP/out")" = "$M/pub/fresh.txt" ] ||
    bad "--consistent through the service (exit $RC): $(cat "$E2E_TMP/out" "$E2E_TMP/err")"
as_nobody "$M" 'tag:perm (pub'
[ "$RC" -eq 2 ] && grep -q "column 10" "$E2E_TMP/err" || bad "a malformed query through the service: exit $RC, $(cat "$E2E_TMP/err")"
as_nobody "$M" nosuchfield:1
[ "$RC" -eq 2 ] && grep -q "unknown field 'nosuchfield'" "$E2E_TMP/err" ||
    bad "an unknown field through the service: exit $RC, $(cat "$E2E_TMP/err")"
as_nobody "$M/pub" -0 --sort name tag:perm
[ "$RC" -eq 0 ] && [ "$(tr '\0' '\n' <"$E2E_TMP/out")" = "$M/pub/a.txt"$'\n'"$M/pub/link.txt"$'\n'"$M/pub" ] ||
    bad "-0 below pub/ through the service: $(tr '\0' '|' <"$E2E_TMP/out") $(cat "$E2E_TMP/err")"
# the reader of a pipe that closes early
as_nobody "$M" --limit 1 tag:perm
[ "$RC" -eq 0 ] && [ "$(wc -l <"$E2E_TMP/out")" -eq 1 ] || bad "--limit 1 through the service: $(cat "$E2E_TMP/out" "$E2E_TMP/err")"

note "the same answers when nobody reads the index file itself"
as_nobody "$M" --json tag:perm
cp "$E2E_TMP/out" "$E2E_TMP/json-service"
as_nobody "$M" -l --sort path tag:perm
cp "$E2E_TMP/out" "$E2E_TMP/long-service"
chmod 755 "$VOL3"
as_nobody "$M" --json tag:perm
cmp -s "$E2E_TMP/out" "$E2E_TMP/json-service" ||
    bad "--json differs between the service and the index file:"$'\n'"$(diff "$E2E_TMP/json-service" "$E2E_TMP/out" | head)"
as_nobody "$M" -l --sort path tag:perm
cmp -s "$E2E_TMP/out" "$E2E_TMP/long-service" || bad "-l differs between the service and the index file"
chmod 750 "$VOL3"

note "a socket name taken by someone else is not believed"
SOCK=$(grep -o 'metafs-search/[0-9a-f]*' "$VOL3/metafs.log" | tail -n 1)
[ -n "$SOCK" ] || fail "the daemon did not log its search socket"
unmount_volume "$MNT3"
setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind("\0" + sys.argv[1])
s.listen()
print("bound", flush=True)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"O\x0d\x00\x00\x00/forged/path\nX\x01\x00\x00\x00\x00")
    except OSError:
        pass
    c.close()
' "$SOCK" >"$E2E_TMP/squatter.out" 2>&1 &
SQUATTER=$!
for i in $(seq 1 50); do grep -q bound "$E2E_TMP/squatter.out" && break; sleep 0.1; done
grep -q bound "$E2E_TMP/squatter.out" || fail "the squatter could not bind @$SOCK: $(cat "$E2E_TMP/squatter.out")"
mount_volume "$VOL3" "$MNT3" -o allow_other
as_nobody "$M" tag:perm
[ "$RC" -eq 1 ] && grep -q "refusing the search service" "$E2E_TMP/err" && ! grep -q forged "$E2E_TMP/out" ||
    bad "a search answered by a squatter: exit $RC, $(cat "$E2E_TMP/out" "$E2E_TMP/err")"
grep -q "another process holds the socket name" "$VOL3/metafs.log" || bad "the daemon did not log the taken name"
kill "$SQUATTER"
wait "$SQUATTER" 2>/dev/null || true
# the daemon takes the name when it is free again (it retries every 5 s)
for i in $(seq 1 100); do
    as_nobody "$M" --count tag:perm
    [ "$RC" -eq 0 ] && break
    sleep 0.2
done
[ "$RC" -eq 0 ] && [ "$(cat "$E2E_TMP/out")" = "${#VISIBLE[@]}" ] ||
    bad "20 s after the squatter left, the service still does not answer: exit $RC, $(cat "$E2E_TMP/out" "$E2E_TMP/err")"

if [ "${#FAILED[@]}" -gt 0 ]; then
    fail "${#FAILED[@]} checks failed:"$'\n'"$(printf '  %s\n' "${FAILED[@]}")"
fi
echo "PASS [$E2E_NAME]"
