#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Lineage captured by the filesystem, through a real mount and real programs:
# cat, sort, a shell pipeline, a compile, a Python script; renames,
# overwrites, deletes, pid reuse, capture switched off by xattr and by mount
# option; `metafs lineage` in every output form and `metafs find` filters.
. "$(dirname "$0")/lib.sh"
e2e_init
setup_mounted_volume

# The graph of `metafs lineage ARGS`, one sorted line an edge:
#   PATH@V <- PATH@V by CMD   (CMD: the argv[0] base name of the process
#                              that used the source)
# and one line a version with its writers: PATH@V written by CMD,CMD
graph() {
    "$METAFS" lineage "$@" --json | /usr/bin/python3 -c '
import json, os, sys
g = json.load(sys.stdin)
files = {(f["ino"], f["version"]): f for f in g["files"]}
procs = {p["id"]: p for p in g["processes"]}
def name(p):
    return os.path.basename(p["argv"][0]) if p.get("argv") else "?"
def fv(ino, v):
    f = files[(ino, v)]
    return "%s@%d%s" % (f["path"], v, " (deleted)" if f["deleted"] else "")
out = set()
for e in g["derived"]:
    out.add("%s <- %s by %s" % (fv(e["ino"], e["version"]), fv(e["from_ino"], e["from_version"]),
                                name(procs[e["used_by"]])))
for f in g["files"]:
    w = ",".join(sorted(name(procs[i]) for i in f.get("generated_by", [])))
    out.add("%s written by %s" % (fv(f["ino"], f["version"]), w or "-"))
print("\n".join(sorted(out)))
'
}

expect_graph() {
    local want=$1
    shift
    local got
    got=$(graph "$@") || fail "metafs lineage $* failed"
    [ "$got" = "$want" ] || fail "metafs lineage $*: got"$'\n'"$got"$'\n'"want"$'\n'"$want"
}

cd "$MNT"
printf 'pear\napple\n' >a.txt
printf 'fig\n' >b.txt

# cat a b > c: c is written by cat, made from a and b
cat a.txt b.txt >c.txt
expect_graph "/a.txt@1 written by bash
/b.txt@1 written by bash
/c.txt@1 <- /a.txt@1 by cat
/c.txt@1 <- /b.txt@1 by cat
/c.txt@1 written by cat" "$MNT/c.txt"

# sort, and --up follows the lineage up
sort c.txt >d.txt
expect_graph "/a.txt@1 written by bash
/b.txt@1 written by bash
/c.txt@1 <- /a.txt@1 by cat
/c.txt@1 <- /b.txt@1 by cat
/c.txt@1 written by cat
/d.txt@1 <- /c.txt@1 by sort
/d.txt@1 written by sort" "$MNT/d.txt" --up
got=$(graph "$MNT/d.txt" --depth 1)
[ "$got" = "/c.txt@1 written by cat
/d.txt@1 <- /c.txt@1 by sort
/d.txt@1 written by sort" ] || fail "--depth 1 gave: $got"

# --down: everything made from a
expect_graph "/a.txt@1 written by bash
/c.txt@1 <- /a.txt@1 by cat
/c.txt@1 written by cat
/d.txt@1 <- /c.txt@1 by sort
/d.txt@1 written by sort" "$MNT/a.txt" --down

# a redirection: the shell's child opens r.txt (`<`) and rs.txt (`>`), then
# execs the command, which reads and writes them through those descriptors:
# the shell's child and the command are one job
printf 'plum\nlime\n' >r.txt
sort <r.txt >rs.txt
expect_graph "/r.txt@1 written by bash
/rs.txt@1 <- /r.txt@1 by bash
/rs.txt@1 written by sort" "$MNT/rs.txt"

# a shell pipeline: the data reaches tr through two pipes, past sort, which
# never touches the volume
cat a.txt b.txt | sort | tr a-z A-Z >e.txt
expect_graph "/a.txt@1 written by bash
/b.txt@1 written by bash
/e.txt@1 <- /a.txt@1 by cat
/e.txt@1 <- /b.txt@1 by cat
/e.txt@1 written by tr" "$MNT/e.txt"
[ "$(cat e.txt)" = "$(printf 'APPLE\nFIG\nPEAR')" ] || fail "the pipeline wrote the wrong bytes"

# a compile: cc1 reads x.c, as writes x.o (through a file outside the
# volume), both under one cc; ld reads x.o and writes prog
if command -v cc >/dev/null; then
    printf 'int main(void) { return 0; }\n' >x.c
    cc -c x.c -o x.o
    cc x.o -o prog
    ./prog || fail "the program built in the volume does not run"
    expect_graph "/prog@1 <- /x.o@1 by ld
/prog@1 written by ld
/x.c@1 written by bash
/x.o@1 <- /x.c@1 by cc1
/x.o@1 written by as" "$MNT/prog"
    tree=$("$METAFS" lineage "$MNT/prog")
    grep -q "in: cc x.o -o prog" <<<"$tree" ||
        fail "the tree does not show the cc command the linker ran under: $tree"
else
    note "no C compiler: the compile case is not run"
fi

# a program that creates its output, closes it unwritten and opens it again
# to read and write it (as GNU ld does when it runs short of descriptors):
# the empty file it made is a version it wrote, not one found without a
# writer, whether the reopen comes before the first close's release or
# after (on a cluster volume too, whose mount passes over its own changelog
# records: following them, it would drop the kernel's entry the creation
# made, and the kernel would soon forget the file, the mount its creator)
waits="0 0.3"
for wait in $waits; do
    /usr/bin/python3 -c '
import os, sys, time
out = sys.argv[1]
open("a.txt").read()
os.close(os.open(out, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644))
time.sleep(float(sys.argv[2]))
fd = os.open(out, os.O_RDWR)
os.read(fd, 16)
os.write(fd, b"own\n")
os.close(fd)' "own$wait.out" "$wait"
    expect_graph "/a.txt@1 written by bash
/own$wait.out@1 <- /a.txt@1 by python3
/own$wait.out@1 written by python3
/own$wait.out@2 <- /a.txt@1 by python3
/own$wait.out@2 <- /own$wait.out@1 by python3
/own$wait.out@2 written by python3" "$MNT/own$wait.out"
done

# a file read by another process while its writer still has it open,
# written: the reader uses the version its writer made so far
/usr/bin/python3 -c '
import os, time
with open("live.out", "w") as w:
    w.write("live\n")
    w.flush()
    open("live.ready", "w").close()
    while not os.path.exists("live.done"):
        time.sleep(0.01)' &
writer=$!
for _ in $(seq 500); do [ -e live.ready ] && break; sleep 0.01; done
cat live.out >seen.out
: >live.done
wait $writer || fail "the writer of live.out failed"
[ "$(cat seen.out)" = live ] || fail "cat read $(cat seen.out) from a file open for writing"
expect_graph "/live.out@1 written by python3
/seen.out@1 <- /live.out@1 by cat
/seen.out@1 written by cat" "$MNT/seen.out"
expect_graph "/live.out@1 written by python3" "$MNT/live.out"

# a Python script reading two inputs and writing an output
cat >"$E2E_TMP/pipeline.py" <<'PYEOF'
import sys
data = [open(p).read() for p in sys.argv[1:3]]
with open(sys.argv[3], "w") as f:
    f.write("".join(sorted(data)))
PYEOF
/usr/bin/python3 "$E2E_TMP/pipeline.py" a.txt b.txt py.out
expect_graph "/a.txt@1 written by bash
/b.txt@1 written by bash
/py.out@1 <- /a.txt@1 by python3
/py.out@1 <- /b.txt@1 by python3
/py.out@1 written by python3" "$MNT/py.out"

# overwrite: a new version, made from new inputs; the old one keeps its own
printf 'kiwi\n' >b.txt
cat b.txt >c.txt
expect_graph "/b.txt@2 written by bash
/c.txt@2 <- /b.txt@2 by cat
/c.txt@2 written by cat" "$MNT/c.txt"
expect_graph "/a.txt@1 written by bash
/b.txt@1 written by bash
/c.txt@1 <- /a.txt@1 by cat
/c.txt@1 <- /b.txt@1 by cat
/c.txt@1 written by cat" "$MNT/c.txt" --version 1

# rename: lineage follows the file
mv a.txt renamed.txt
got=$(graph "$MNT/d.txt")
grep -qx "/c.txt@1 <- /renamed.txt@1 by cat" <<<"$got" ||
    fail "after a rename the source is not shown under its new name: $got"

# delete: the past versions' lineage stays queryable
rm c.txt
expect_graph "/b.txt@1 written by bash
/c.txt@1 (deleted) <- /b.txt@1 by cat
/c.txt@1 (deleted) <- /renamed.txt@1 by cat
/c.txt@1 (deleted) written by cat
/d.txt@1 <- /c.txt@1 (deleted) by sort
/d.txt@1 written by sort
/renamed.txt@1 written by bash" "$MNT/d.txt"

# the other output forms
"$METAFS" lineage "$MNT/d.txt" --prov-json | /usr/bin/python3 -c '
import json, sys
p = json.load(sys.stdin)
assert set(p) >= {"prefix", "entity", "activity", "wasGeneratedBy", "used", "wasDerivedFrom"}, p.keys()
d = list(p["wasDerivedFrom"].values())
assert len(d) == 3, d
for r in d:
    assert r["prov:generatedEntity"] in p["entity"] and r["prov:usedEntity"] in p["entity"]
    assert r["prov:activity"] in p["activity"]
for r in p["wasGeneratedBy"].values():
    assert r["prov:activity"] in p["activity"] and r["prov:entity"] in p["entity"]
' || fail "--prov-json is not the expected PROV-JSON"
"$METAFS" lineage "$MNT/d.txt" --dot >"$E2E_TMP/g.dot"
grep -q '^digraph lineage {' "$E2E_TMP/g.dot" || fail "--dot gave no digraph"
[ "$(grep -c -- '-> p[0-9]* \[label="wasGeneratedBy"\]' "$E2E_TMP/g.dot")" = 4 ] ||
    fail "--dot: expected 4 wasGeneratedBy edges: $(cat "$E2E_TMP/g.dot")"
if command -v dot >/dev/null; then
    svg=$("$METAFS" lineage "$MNT/d.txt" --svg)
    grep -q '<svg' <<<"$svg" || fail "--svg gave no SVG"
else
    must_fail "$METAFS" lineage "$MNT/d.txt" --svg
    last_err_matches "graphviz"
fi
tree=$("$METAFS" lineage "$MNT/d.txt")
[[ "$tree" == "/d.txt  v1  "* ]] || fail "the tree does not start with the file: $tree"

# bad input gets a clear message
must_fail "$METAFS" lineage "$MNT/nothere"
last_err_matches "No such file"
must_fail "$METAFS" lineage "$MNT" --up
last_err_matches "not a regular file"
must_fail "$METAFS" lineage "$MNT/d.txt" --version 9
last_err_matches "no version 9"
must_fail "$METAFS" lineage "$MNT/d.txt" --depth x
# a file created and closed unwritten has a version only once it is read
: >"$MNT/never-read"
must_fail "$METAFS" lineage "$MNT/never-read"
last_err_matches "no lineage recorded"

# metafs find: derived-from and generated-by
found=$("$METAFS" find "$MNT" 'derived-from:/renamed.txt' --consistent | LC_ALL=C sort)
[ "$found" = "$MNT/d.txt
$MNT/e.txt
$(for w in $waits; do echo "$MNT/own$w.out"; done | LC_ALL=C sort)
$MNT/py.out" ] || fail "derived-from:/renamed.txt found: $found"
found=$("$METAFS" find "$MNT" 'generated-by:sort' --consistent | LC_ALL=C sort)
[ "$found" = "$MNT/d.txt
$MNT/rs.txt" ] || fail "generated-by:sort found: $found"
if command -v cc >/dev/null; then
    found=$("$METAFS" find "$MNT" 'generated-by:cc' --consistent | LC_ALL=C sort)
    [ "$found" = "$MNT/prog
$MNT/x.o" ] || fail "generated-by:cc found: $found"
fi
found=$("$METAFS" find "$MNT" 'derived-from:/nothing/here' --consistent)
[ -z "$found" ] || fail "derived-from a path that is not there found: $found"

# derived-from: follows the newest version: a copy of d.txt derives from
# renamed.txt (through d.txt and the deleted c.txt); made again from b.txt
# alone, it no longer does
cp d.txt d2.txt
found=$("$METAFS" find "$MNT" 'derived-from:/renamed.txt name:d2.txt' --consistent)
[ "$found" = "$MNT/d2.txt" ] || fail "a copy of d.txt is not derived from renamed.txt: $found"
cat b.txt >d2.txt
found=$("$METAFS" find "$MNT" 'derived-from:/renamed.txt name:d2.txt' --consistent)
[ -z "$found" ] || fail "d2.txt made again from b.txt alone still derives from renamed.txt: $found"

# cp -r inside the volume: every copy derives from what cp had read before
# writing it (cp is one job), which the store and the index keep as counts,
# not as an edge for every pair
mkdir tree
for i in $(seq -w 1 300); do echo "$i" >"tree/f$i"; done
cp -r tree tree2
first=$(ls -f tree | grep -v '^\.' | head -1)
last=$(ls -f tree | grep -v '^\.' | tail -1)
n=$("$METAFS" find "$MNT" "derived-from:/tree/$first" --consistent --count)
[ "$n" = 300 ] || fail "derived-from the first file cp read: $n copies, expected 300"
n=$("$METAFS" find "$MNT" "derived-from:/tree/$last" --consistent --count)
[ "$n" = 1 ] || fail "derived-from the last file cp read: $n copies, expected 1"
n=$("$METAFS" lineage "$MNT/tree2/$last" --depth 1 --json |
    /usr/bin/python3 -c 'import json, sys; print(len(json.load(sys.stdin)["derived"]))')
[ "$n" = 300 ] || fail "the last copy derives from $n files, expected all 300 cp read"
n=$("$METAFS" lineage "$MNT/tree/$first" --down --depth 1 --json |
    /usr/bin/python3 -c 'import json, sys; print(len(json.load(sys.stdin)["derived"]))')
[ "$n" = 300 ] || fail "--down from the first file cp read: $n copies, expected 300"

# once per process and version: reading a file twice records one use. A
# use of a version the mount knows waits to be recorded with the next
# version made, or at most a tenth of a second: give it a moment
used_records() { "$METAFS" changelog "$VOL" --json | grep -c '"op":"used"'; }
before=$(used_records)
sh -c 'cat b.txt b.txt b.txt >/dev/null; cat b.txt >/dev/null'
for _ in $(seq 1 20); do
    after=$(used_records)
    [ $((after - before)) -ge 2 ] && break
    sleep 0.1
done
sleep 0.3
after=$(used_records)
[ $((after - before)) = 2 ] || fail "two processes reading one version gave $((after - before)) used records"

# each process is recorded once, however many of its uses and versions
# were recorded in how many transactions
"$METAFS" changelog "$VOL" --json | /usr/bin/python3 -c '
import collections, json, sys
n = collections.Counter(r["proc"] for r in map(json.loads, sys.stdin) if r["op"] == "process")
twice = {p: c for p, c in n.items() if c > 1}
assert n and not twice, "processes recorded more than once: %s" % twice
' || fail "a process has more than one record"

# pid reuse: a new process with the pid of one that wrote before is another
# process (its start time differs), and does not inherit its uses
if [ -w /proc/sys/kernel/ns_last_pid ]; then
    printf 'one\n' >src1
    printf 'two\n' >src2
    cat src1 >out1 &
    p1=$!
    wait $p1
    sleep 0.05 # a start time in another clock tick
    # the next process gets the same pid
    echo $((p1 - 1)) >/proc/sys/kernel/ns_last_pid
    cat src2 >out2 &
    p2=$!
    wait $p2
    [ "$p1" = "$p2" ] || fail "pid $p1 was not reused (got $p2)"
    expect_graph "/out2@1 <- /src2@1 by cat
/out2@1 written by cat
/src2@1 written by bash" "$MNT/out2"
    # the process id (in the volume) that wrote a file's version
    writer_id() {
        "$METAFS" lineage "$1" --json |
            /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["files"][0]["generated_by"][0])'
    }
    p1=$(writer_id "$MNT/out1")
    p2=$(writer_id "$MNT/out2")
    [ "$p1" != "$p2" ] || fail "two processes with one pid were taken as one"
else
    note "ns_last_pid is not writable: pid reuse is not tested"
fi

# capture off for a subtree (inherited), and back on below it
mkdir -p quiet/deeper loud
setfattr -n user.metafs.lineage -v off quiet
printf 'x\n' >quiet/deeper/in
cat quiet/deeper/in >quiet/deeper/out
must_fail "$METAFS" lineage "$MNT/quiet/deeper/out"
last_err_matches "no lineage recorded"
setfattr -n user.metafs.lineage -v on quiet/deeper
cat quiet/deeper/in >quiet/deeper/out2
expect_graph "/quiet/deeper/in@1 written by -
/quiet/deeper/out2@1 <- /quiet/deeper/in@1 by cat
/quiet/deeper/out2@1 written by cat" "$MNT/quiet/deeper/out2"
# a directory moved out of the quiet subtree is captured again
setfattr -x user.metafs.lineage quiet/deeper
mkdir quiet/moved
mv quiet/moved loud/
printf 'y\n' >loud/moved/f
cat loud/moved/f >loud/moved/g
got=$(graph "$MNT/loud/moved/g")
grep -qx "/loud/moved/g@1 <- /loud/moved/f@1 by cat" <<<"$got" ||
    fail "capture did not resume in a directory moved out of the quiet subtree: $got"

# noise: version-control internals are not recorded
mkdir -p .git/objects
printf 'ref\n' >.git/objects/o
cat .git/objects/o >/dev/null
must_fail "$METAFS" lineage "$MNT/.git/objects/o"
last_err_matches "no lineage recorded"

cd /
unmount_volume "$MNT"

# -o nolineage: nothing is recorded at all
mount_volume "$VOL" "$MNT" -o nolineage
n0=$("$METAFS" changelog "$VOL" --json | grep -Ec '"op":"(used|generated|process)"|"file_version"')
cat "$MNT/d.txt" >"$MNT/copy.txt"
n1=$("$METAFS" changelog "$VOL" --json | grep -Ec '"op":"(used|generated|process)"|"file_version"')
[ "$n0" = "$n1" ] || fail "-o nolineage still recorded $((n1 - n0)) provenance records"
must_fail "$METAFS" lineage "$MNT/copy.txt"
last_err_matches "no lineage recorded"
unmount_volume "$MNT"

# the lineage graph the indexer kept as changes came is the one a rebuild
# from the metadata makes
"$METAFS" fsck "$VOL" --index >"$E2E_TMP/fsck.out" 2>&1 || true
grep -q "^index:" "$E2E_TMP/fsck.out" &&
    fail "the index kept as changes came differs from one built afresh: $(grep '^index:' "$E2E_TMP/fsck.out" | head -5)"

# the lineage index is rebuilt from the metadata
"$METAFS" reindex "$VOL" >/dev/null 2>&1 || fail "reindex failed"
mount_volume "$VOL" "$MNT"
found=$("$METAFS" find "$MNT" 'generated-by:sort' --consistent | LC_ALL=C sort)
[ "$found" = "$MNT/d.txt
$MNT/rs.txt" ] || fail "after reindex generated-by:sort found: $found"
unmount_volume "$MNT"
echo "PASS [$E2E_NAME]"
