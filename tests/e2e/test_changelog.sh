#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The changelog of a mounted volume, followed live: every change appears once,
# in order, with gap-free sequence numbers and the right names and inodes;
# --from on the unmounted volume starts where asked.
source "$(dirname "$0")/lib.sh"
e2e_init python3 setfattr
setup_mounted_volume

LOG=$E2E_TMP/follow.jsonl
"$METAFS" changelog "$MNT" --follow --json >"$LOG" 2>"$E2E_TMP/follow.err" &
FOLLOWER=$!
track_pid "$FOLLOWER"
sleep 0.5
kill -0 "$FOLLOWER" 2>/dev/null ||
    fail "metafs changelog --follow exited at once: $(cat "$E2E_TMP/follow.err")"

printf 'changelog test content\n' >"$E2E_TMP/src.txt"
must cp "$E2E_TMP/src.txt" "$MNT/a.txt"
must mv "$MNT/a.txt" "$MNT/b.txt"
must setfattr -n user.k -v v "$MNT/b.txt"
must mkdir -p "$MNT/d/e"
must touch "$MNT/d/e/f"
must rm -r "$MNT/d"

# The last change is the rmdir of d: wait for it (up to 10 s).
for i in $(seq 1 100); do
    grep -q '"rmdir"' "$LOG" && grep '"rmdir"' "$LOG" | grep -q '"name": *"d"' && break
    kill -0 "$FOLLOWER" 2>/dev/null ||
        fail "metafs changelog --follow died: $(cat "$E2E_TMP/follow.err")"
    sleep 0.1
done
sleep 0.3
kill "$FOLLOWER"
wait "$FOLLOWER" 2>/dev/null || true
[ -s "$LOG" ] || fail "metafs changelog --follow printed nothing in 10 s: $(cat "$E2E_TMP/follow.err")"

check_log() {
    python3 - "$1" "$(stat -c %s "$E2E_TMP/src.txt")" <<'PY'
import json, re, sys

path, size = sys.argv[1], int(sys.argv[2])
recs = []
with open(path, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
        try:
            recs.append(json.loads(line))
        except ValueError as e:
            sys.exit("line %d is not JSON (%s): %r" % (n, e, line[:200]))
if not recs:
    sys.exit("no records")

def die(msg, rec=None):
    sys.exit(msg + ("\n  record: %s" % json.dumps(rec) if rec is not None else ""))

time_re = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)$")
for r in recs:
    for k in ("seq", "time", "op", "ino", "version", "uid", "gid", "pid"):
        if k not in r:
            die("record without %r" % k, r)
    for k in ("seq", "ino", "version", "uid", "gid", "pid"):
        if not isinstance(r[k], int) or isinstance(r[k], bool):
            die("%r is not an integer" % k, r)
    if not time_re.match(r["time"]):
        die("time is not RFC 3339 with nanoseconds", r)

seqs = [r["seq"] for r in recs]
if seqs[0] != 1:
    die("the first record has seq %d, expected 1 (follow starts at 1)" % seqs[0], recs[0])
for a, b in zip(recs, recs[1:]):
    if b["seq"] != a["seq"] + 1:
        die("seq %d follows seq %d: not strictly increasing by 1" % (b["seq"], a["seq"]), b)

# The namespace and xattr changes, exactly and in order; write and setattr
# records may sit in between (checked below).
want = [
    ("create", "a.txt"), ("rename", "a.txt"), ("setxattr", None),
    ("mkdir", "d"), ("mkdir", "e"), ("create", "f"),
    ("unlink", "f"), ("rmdir", "e"), ("rmdir", "d"),
]
main = [r for r in recs if r["op"] not in ("write", "setattr")]
got = [(r["op"], r.get("name")) for r in main]
if len(got) != len(want) or any(
        g[0] != w[0] or (w[1] is not None and g[1] != w[1]) for g, w in zip(got, want)):
    die("ops (without write/setattr) are %s,\n  expected %s" % (got, want))
create_a, rename, setx, mk_d, mk_e, create_f, unl_f, rm_e, rm_d = main

root = create_a["parent"]
ino = create_a["ino"]
if rename["ino"] != ino or setx["ino"] != ino:
    die("rename/setxattr name inode %d/%d, the create named %d" % (rename["ino"], setx["ino"], ino))
if (rename["parent"], rename["new_parent"], rename["new_name"]) != (root, root, "b.txt"):
    die("rename fields are wrong (expected a.txt -> b.txt in the root %d)" % root, rename)
if "replaced" in rename:
    die("rename over nothing carries 'replaced'", rename)
if setx.get("xattr") != "user.k" or setx.get("value") != "v":
    die("setxattr fields are wrong (expected user.k = v)", setx)
if mk_d["parent"] != root:
    die("mkdir d is not in the root %d" % root, mk_d)
if mk_e["parent"] != mk_d["ino"]:
    die("mkdir e is not in d (ino %d)" % mk_d["ino"], mk_e)
if create_f["parent"] != mk_e["ino"]:
    die("create f is not in e (ino %d)" % mk_e["ino"], create_f)
if (unl_f["parent"], unl_f["ino"]) != (mk_e["ino"], create_f["ino"]):
    die("unlink f does not match the create of f", unl_f)
if (rm_e["parent"], rm_e["ino"], rm_e["name"]) != (mk_d["ino"], mk_e["ino"], "e"):
    die("rmdir e does not match the mkdir of e", rm_e)
if (rm_d["parent"], rm_d["ino"], rm_d["name"]) != (root, mk_d["ino"], "d"):
    die("rmdir d does not match the mkdir of d", rm_d)

# The copy's content: at least one write record of a.txt's inode between its
# create and its rename, the last one with the final size.
i0, i1 = recs.index(create_a), recs.index(rename)
writes = [r for r in recs[i0:i1] if r["op"] == "write" and r["ino"] == ino]
if not writes:
    die("no write record for a.txt (ino %d) between its create and its rename" % ino)
if writes[-1].get("size") != size:
    die("the last write of a.txt says size %r, expected %d" % (writes[-1].get("size"), size), writes[-1])
for r in recs:
    if r["op"] == "write" and not isinstance(r.get("size"), int):
        die("write without an integer size", r)
    if r["op"] == "setattr":
        fields = r.get("fields")
        ok = {"mode", "uid", "gid", "size", "atime", "mtime", "ctime"}
        if not isinstance(fields, list) or not fields or not set(fields) <= ok:
            die("setattr fields are not a non-empty list of known names", r)
for r in recs:
    if r["ino"] == ino and r["version"] < 1:
        die("version below 1", r)
vers = [r["version"] for r in recs if r["ino"] == ino]
if vers != sorted(vers) or len(set(vers)) != len(vers):
    die("versions of a.txt's inode do not strictly grow: %s" % vers)
for r in recs:
    if (r["uid"], r["gid"]) != (0, 0):
        die("uid/gid of a change made by root are not 0/0", r)
print(len(recs))
PY
}

nrec=$(check_log "$LOG") || fail "changelog --follow --json of the mount (records in $LOG):"$'\n'"$(head -c 3000 "$LOG")"
note "$nrec records checked"

# The same records, without --follow, through a path inside the mount.
"$METAFS" changelog "$MNT/b.txt" --json >"$E2E_TMP/all-mounted.jsonl" 2>"$E2E_TMP/err" ||
    fail "metafs changelog $MNT/b.txt --json failed: $(cat "$E2E_TMP/err")"
same_files "changelog --follow output and changelog output" "$LOG" "$E2E_TMP/all-mounted.jsonl"

# More kinds of records: link, symlink, mknod, rename over a file
# ("replaced"), binary xattr values, removexattr, setattr fields and a name
# that is not UTF-8.
b_ino=$(stat -c %i "$MNT/b.txt")
must ln "$MNT/b.txt" "$MNT/hl"
must ln -s b.txt "$MNT/sl"
must mkfifo "$MNT/p"
echo replacement >"$MNT/c"
must mv -T "$MNT/c" "$MNT/b.txt"
must setfattr -n user.bin -v 0xff00 "$MNT/hl"
must setfattr -x user.k "$MNT/hl"
must chmod 600 "$MNT/hl"
must truncate -s 0 "$MNT/hl"
python3 -c 'import os, sys; open(os.path.join(os.fsencode(sys.argv[1]), b"\xff.bin"), "w").close()' "$MNT" ||
    fail "creating a file with a non-UTF-8 name failed"
"$METAFS" changelog "$MNT" --json --from $((nrec + 1)) >"$E2E_TMP/more.jsonl" 2>"$E2E_TMP/err" ||
    fail "metafs changelog $MNT --json --from $((nrec + 1)) failed: $(cat "$E2E_TMP/err")"
python3 - "$E2E_TMP/more.jsonl" "$nrec" "$b_ino" <<'PY' || fail "records of links, renames, xattrs and setattr (in $E2E_TMP/more.jsonl):"$'\n'"$(head -c 3000 "$E2E_TMP/more.jsonl")"
import base64, json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
nrec, b_ino = int(sys.argv[2]), int(sys.argv[3])
if not recs or recs[0]["seq"] != nrec + 1:
    sys.exit("--from %d does not start at %d" % (nrec + 1, nrec + 1))
for a, b in zip(recs, recs[1:]):
    if b["seq"] != a["seq"] + 1:
        sys.exit("seq %d follows %d" % (b["seq"], a["seq"]))
def one(op, **fields):
    for r in recs:
        if r["op"] == op and all(r.get(k) == v for k, v in fields.items()):
            return r
    sys.exit("no %s record with %s" % (op, fields))
root = one("link", name="hl", ino=b_ino)["parent"]
one("symlink", name="sl", parent=root)
one("mknod", name="p", parent=root)
c = one("create", name="c", parent=root)
ren = one("rename", name="c", new_name="b.txt", ino=c["ino"], parent=root, new_parent=root)
if ren.get("replaced") != b_ino:
    sys.exit("rename over b.txt has replaced=%r, expected %d" % (ren.get("replaced"), b_ino))
sx = one("setxattr", ino=b_ino, xattr="user.bin")
if "value" in sx or base64.b64decode(sx.get("value_base64", "")) != b"\xff\x00":
    sys.exit("binary xattr value is not given as value_base64 of ff00: %s" % json.dumps(sx))
one("removexattr", ino=b_ino, xattr="user.k")
if not any(r["op"] == "setattr" and r["ino"] == b_ino and "mode" in r["fields"] for r in recs):
    sys.exit("no setattr record with field mode for chmod")
if not any(r["op"] == "setattr" and r["ino"] == b_ino and "size" in r["fields"] for r in recs):
    sys.exit("no setattr record with field size for truncate")
raw = [r for r in recs if r["op"] == "create" and "name_base64" in r]
if len(raw) != 1 or base64.b64decode(raw[0]["name_base64"]) != b"\xff.bin" or "name" in raw[0]:
    sys.exit("the create of a non-UTF-8 name has no (or a wrong) name_base64")
PY

unmount_volume "$MNT"

# After unmount, from the volume itself: everything, then --from K.
"$METAFS" changelog "$VOL" --json >"$E2E_TMP/all.jsonl" 2>"$E2E_TMP/err" ||
    fail "metafs changelog $VOL --json failed after unmount: $(cat "$E2E_TMP/err")"
total=$(wc -l <"$E2E_TMP/all.jsonl")
[ "$total" -gt "$nrec" ] || fail "the volume's changelog has $total records, the follower saw $nrec"
head -n "$nrec" "$E2E_TMP/all.jsonl" >"$E2E_TMP/all-head.jsonl"
same_files "the followed records and the volume's changelog" "$LOG" "$E2E_TMP/all-head.jsonl"

K=$(((total + 1) / 2 + 1))
"$METAFS" changelog "$VOL" --json --from "$K" >"$E2E_TMP/from.jsonl" 2>"$E2E_TMP/err" ||
    fail "metafs changelog $VOL --json --from $K failed: $(cat "$E2E_TMP/err")"
tail -n +"$K" "$E2E_TMP/all.jsonl" >"$E2E_TMP/tail.jsonl"
python3 - "$E2E_TMP/from.jsonl" "$K" <<'PY' || fail "changelog --from $K prints records before $K"
import json, sys
seqs = [json.loads(l)["seq"] for l in open(sys.argv[1])]
k = int(sys.argv[2])
if not seqs or seqs[0] != k or any(s < k for s in seqs):
    sys.exit("--from %d printed seqs %s" % (k, seqs))
PY
same_files "changelog --from $K and the tail of the full changelog" "$E2E_TMP/tail.jsonl" "$E2E_TMP/from.jsonl"

# --from past the end prints nothing and succeeds.
out=$("$METAFS" changelog "$VOL" --json --from $((total + 1)) 2>"$E2E_TMP/err") ||
    fail "metafs changelog --from past the end failed: $(cat "$E2E_TMP/err")"
[ -z "$out" ] || fail "changelog --from past the end printed: $(shorten "$out")"
echo "PASS [$E2E_NAME]"
