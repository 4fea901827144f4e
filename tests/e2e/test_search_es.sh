#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Elasticsearch/OpenSearch backend, against helpers/mock_es.py: a local
# HTTP server that checks each request against the documented REST API
# (paths, methods, Content-Type, NDJSON framing, version parameters) and
# stores and searches documents. No real cluster runs here.
#
# A volume with search.conf is mounted; the daemon's indexer builds the
# index in the cluster and follows the changelog. Then:
#  - the random tree and random queries of test_search_random.sh, answered
#    from the cluster, must agree with the model exactly, through renames,
#    deletions and xattr changes, and after metafs reindex;
#  - a query corpus with every sort order gives byte for byte the output of
#    the SQLite backend on the same volume;
#  - the protocol: external versions on every write, no request refused by
#    the server, few requests a thousand changes, basic auth, failover from
#    a node that is down, 429s and per-item 429s retried, a document the
#    cluster refuses for good parked while the rest is indexed.
source "$(dirname "$0")/lib.sh"
e2e_init python3 setfattr
HERE=$(cd "$(dirname "$0")" && pwd)
ORACLE=$HERE/helpers/search_oracle.py
MOCK=$HERE/helpers/mock_es.py
SEED=${SEARCH_SEED:-$(( $(date +%s%N) % 1000000 ))}
NQ=${SEARCH_QUERIES:-40}
note "seed $SEED (rerun with SEARCH_SEED=$SEED)"

LOG=$E2E_TMP/es-requests.jsonl
PLAN=$E2E_TMP/es-fail-plan.json
python3 "$MOCK" --port-file "$E2E_TMP/es-port" --user metafs --password 's3cret pass' --api-key test-key-1 --log "$LOG" \
    --fail-plan "$PLAN" 2>"$E2E_TMP/es-server.log" &
track_pid $!
for _ in $(seq 1 100); do
    [ -s "$E2E_TMP/es-port" ] && break
    sleep 0.1
done
[ -s "$E2E_TMP/es-port" ] || fail "the test server did not start: $(cat "$E2E_TMP/es-server.log")"
PORT=$(cat "$E2E_TMP/es-port")
ES=http://127.0.0.1:$PORT

# GET from the test server; fails on an HTTP error
es_get() {
    python3 - "$ES$1" <<'EOF'
import base64, sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={
    "Authorization": "Basic " + base64.b64encode(b"metafs:s3cret pass").decode()})
sys.stdout.write(urllib.request.urlopen(req).read().decode())
EOF
}

violations() {
    es_get /_mock/stats | python3 -c 'import json,sys; v=json.load(sys.stdin)["violations"]; print("\n".join(v))'
}

VOL=$E2E_TMP/vol
MNT=$E2E_TMP/mnt
new_volume "$VOL"
printf 's3cret pass\n' >"$E2E_TMP/es-password"
# the first node is down: every request must fail over to the second
cat >"$VOL/search.conf" <<EOF
# the search cluster of this volume
backend = elasticsearch
url = http://127.0.0.1:9 $ES
index = metafs-test
user = metafs
password_file = $E2E_TMP/es-password
timeout = 20
EOF

# a wrong password is refused with a clear message, and nothing is built
printf 'wrong\n' >"$E2E_TMP/bad-password"
sed "s|$E2E_TMP/es-password|$E2E_TMP/bad-password|" "$VOL/search.conf" >"$E2E_TMP/bad.conf"
cp "$VOL/search.conf" "$E2E_TMP/good.conf"
cp "$E2E_TMP/bad.conf" "$VOL/search.conf"
out=$("$METAFS" reindex "$VOL" 2>&1) && fail "reindex with a wrong password succeeded: $out"
echo "$out" | grep -q "401" || fail "a wrong password: expected the 401 in the message, got: $out"
cp "$E2E_TMP/good.conf" "$VOL/search.conf"

mount_volume "$VOL" "$MNT"
# the daemon builds the index in the cluster, then follows the changelog
for _ in $(seq 1 100); do
    es_get /_alias/metafs-test >/dev/null 2>&1 && break
    sleep 0.1
done
es_get /_alias/metafs-test >/dev/null || fail "no alias metafs-test in the cluster"

# tag, find
mkdir "$MNT/photos"
echo hi >"$MNT/photos/beach.jpg"
setfattr -n user.xdg.tags -v "beach,summer" "$MNT/photos/beach.jpg"
setfattr -n user.annotations -v '{"bicycles": 4, "ok": true}' "$MNT/photos/beach.jpg"
got=$("$METAFS" find "$MNT" --consistent tag:beach)
[ "$got" = "$MNT/photos/beach.jpg" ] || fail "tag:beach: got '$got'"
got=$("$METAFS" find "$MNT" --consistent 'annotations.bicycles:>3 annotations.ok:true')
[ "$got" = "$MNT/photos/beach.jpg" ] || fail "a JSON range: got '$got'"
json=$("$METAFS" find "$MNT" --consistent --json tag:summer)
echo "$json" | python3 -c '
import json, sys
o = json.loads(sys.stdin.read())
assert o["tags"] == ["beach", "summer"], o
assert o["xattrs"]["annotations.bicycles"] == 4 and o["xattrs"]["annotations.ok"] is True, o
' || fail "--json from the cluster: $json"
# a directory rename rewrites the paths below it
mv "$MNT/photos" "$MNT/pictures"
got=$("$METAFS" find "$MNT" --consistent tag:beach)
[ "$got" = "$MNT/pictures/beach.jpg" ] || fail "after a directory rename: got '$got'"
rm -r "$MNT/pictures"
got=$("$METAFS" find "$MNT" --consistent --count tag:beach)
[ "$got" = 0 ] || fail "after a recursive delete: $got results"

# the random tree and queries, answered from the cluster
python3 "$ORACLE" build "$MNT" "$SEED" || fail "building the random tree failed (seed $SEED)"
failed=0
for round in 0 1 2; do
    if [ "$round" -gt 0 ]; then
        python3 "$ORACLE" mutate "$MNT" "$SEED" "$round" || fail "mutation round $round failed (seed $SEED)"
    fi
    python3 "$ORACLE" check "$MNT" "$VOL" "$METAFS" "$SEED" "$round" "$NQ" || failed=1
done
[ "$failed" -eq 0 ] || fail "metafs find (cluster) and the model disagree (seed $SEED); see MISMATCH lines above"

# lineage: generated-by: reads the cluster's documents; derived-from: walks
# the volume's lineage records (the cluster holds no graph) and the cluster
# filters by the files found. Checked here, and against SQLite below.
mkdir "$MNT/lin"
printf 'pear\n' >"$MNT/lin/a.txt"
printf 'fig\n' >"$MNT/lin/b.txt"
cat "$MNT/lin/a.txt" "$MNT/lin/b.txt" >"$MNT/lin/c.txt"
sort "$MNT/lin/c.txt" >"$MNT/lin/d.txt"
sort "$MNT/lin/b.txt" >"$MNT/lin/e.txt"
got=$("$METAFS" find "$MNT" --consistent 'derived-from:/lin/a.txt' | LC_ALL=C sort)
[ "$got" = "$MNT/lin/c.txt
$MNT/lin/d.txt" ] || fail "derived-from:/lin/a.txt (cluster): got '$got'"
got=$("$METAFS" find "$MNT" --consistent 'generated-by:sort' | LC_ALL=C sort)
[ "$got" = "$MNT/lin/d.txt
$MNT/lin/e.txt" ] || fail "generated-by:sort (cluster): got '$got'"
# c.txt made again from b alone: its newest version no longer derives from
# a, d.txt's (made from the older c) still does
cat "$MNT/lin/b.txt" >"$MNT/lin/c.txt"
got=$("$METAFS" find "$MNT" --consistent 'derived-from:/lin/a.txt' | LC_ALL=C sort)
[ "$got" = "$MNT/lin/d.txt" ] || fail "derived-from:/lin/a.txt after c.txt was rewritten (cluster): got '$got'"
got=$("$METAFS" find "$MNT" --consistent --count 'derived-from:/lin/nothing')
[ "$got" = 0 ] || fail "derived-from a path that is not there (cluster): $got results"

# the same output as the SQLite backend, byte for byte, in every order
CORPUS=("type:f" "type:d" "tag:beach OR tag:red" "size:>100" "-type:d" "name:*.txt" "mode:644 OR nlink:>1"
        "annotations.ns:>20" "annotations.meta.level:2..4 OR annotations.ok:true" 'annotations.n:"3"'
        "NOT tag:beach" "path:/ type:f" "report" "type:f -(size:0)"
        "derived-from:/lin/b.txt" "generated-by:cat OR derived-from:/lin/a.txt" "path:/lin -derived-from:/lin/b.txt")
answers() {
    local q s r
    for q in "${CORPUS[@]}"; do
        for s in name size mtime path; do
            for r in "" --reverse; do
                echo "== $q --sort $s $r"
                "$METAFS" find "$MNT" --consistent --sort "$s" $r -l "$q" 2>&1 || echo "exit $?"
            done
        done
        echo "== $q --json"
        local js
        js=$("$METAFS" find "$MNT" --consistent --json "$q" 2>&1) || { echo "exit $?: $js"; continue; }
        printf '%s\n' "$js" | python3 -c '
import json, sys
for l in sorted(json.dumps({k: v for k, v in json.loads(x).items() if k != "score"}, sort_keys=True) for x in sys.stdin if x.strip()): print(l)'
    done
}
answers >"$E2E_TMP/es-answers.txt"
mv "$VOL/search.conf" "$E2E_TMP/search.conf.saved"
must "$METAFS" reindex "$VOL"
answers >"$E2E_TMP/sqlite-answers.txt"
mv "$E2E_TMP/search.conf.saved" "$VOL/search.conf"
if ! diff -u "$E2E_TMP/sqlite-answers.txt" "$E2E_TMP/es-answers.txt" >"$E2E_TMP/answers.diff"; then
    head -40 "$E2E_TMP/answers.diff" >&2
    fail "the cluster and SQLite answer differently (the diff above)"
fi
grep -c '^==' "$E2E_TMP/es-answers.txt" >/dev/null
lines=$(grep -vc '^==' "$E2E_TMP/es-answers.txt")
[ "$lines" -gt 100 ] || fail "the corpus found too little to compare ($lines lines)"
note "the same $lines result lines from both backends"

# requests a thousand changes: a thousand tagged files, then the requests
# between the first write and --consistent seeing them
mkdir "$MNT/many"
before=$(wc -l <"$LOG")
python3 - "$MNT/many" <<'EOF'
import os, sys
d = sys.argv[1]
for i in range(1000):
    p = os.path.join(d, "f%04d" % i)
    with open(p, "w") as f:
        f.write("x")
    os.setxattr(p, "user.tag.bulk", b"")
EOF
got=$("$METAFS" find "$MNT" --consistent --count tag:bulk)
[ "$got" = 1000 ] || fail "1000 tagged files: found $got"
python3 - "$LOG" "$before" <<'EOF' || fail "request counts (above)"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2]):]
writes = [r for r in rows if r["path"].endswith("/_bulk") or "/_doc/" in r["path"] and r["method"] == "PUT"]
bulk = [r for r in rows if r["path"].endswith("/_bulk")]
print("# 1000 files (3000+ changelog records): %d write requests, %d of them _bulk, %d NDJSON lines"
      % (len(writes), len(bulk), sum(r.get("ndjson_lines") or 0 for r in bulk)), file=sys.stderr)
assert len(writes) <= 30, "%d write requests for 1000 files" % len(writes)
EOF
# every document write carries the inode version, external_gte
python3 - "$ES" <<'EOF' || fail "document versions (above)"
import base64, json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "/_mock/indices",
                             headers={"Authorization": "Basic " + base64.b64encode(b"metafs:s3cret pass").decode()})
idx = json.load(urllib.request.urlopen(req))
live = [i for i, v in idx.items() if "metafs-test" in v.get("aliases", [])]
assert len(live) == 1, "the alias points at %s" % live
docs = idx[live[0]]["docs"]
bad = [(k, d["_version"], d["_source"].get("version")) for k, d in docs.items()
       if k != "state" and d["_version"] != d["_source"].get("version")]
assert not bad, "documents whose version is not the inode's: %s" % bad[:5]
assert len(idx) == 1, "old concrete indices left: %s" % sorted(idx)
EOF

# a node answering 429, and items refused with 429, are tried again
echo '{"bulk_429": 2, "bulk_item_429": 3}' >"$PLAN"
for i in 1 2 3 4 5; do echo y >"$MNT/many/retry$i"; setfattr -n user.tag.retry -v "" "$MNT/many/retry$i"; done
got=$("$METAFS" find "$MNT" --consistent --timeout 60 --count tag:retry)
[ "$got" = 5 ] || fail "after 429s: found $got of 5"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); assert not any(p.values()), p' "$PLAN" ||
    fail "the failures planned were not all met: $(cat "$PLAN")"

# a document the cluster refuses for good is parked; the rest goes on
echo '{"bulk_item_400": 1}' >"$PLAN"
echo z >"$MNT/many/refused"
setfattr -n user.tag.park -v "" "$MNT/many/refused"
echo z >"$MNT/many/accepted"
setfattr -n user.tag.park -v "" "$MNT/many/accepted"
got=$("$METAFS" find "$MNT" --consistent --count tag:park)
[ "$got" -ge 1 ] || fail "a parked document stopped the indexer ($got found)"
[ -s "$VOL/search-parked.jsonl" ] || fail "no $VOL/search-parked.jsonl after a refused document"
grep -q mapper_parsing_exception "$VOL/search-parked.jsonl" || fail "the parked file lacks the reason: $(head -c 300 "$VOL/search-parked.jsonl")"

# the indexer stopped and restarted mid-stream: nothing lost or doubled
unmount_volume "$MNT"
mount_volume "$VOL" "$MNT" -o noindex
for i in $(seq 1 50); do echo x >"$MNT/many/late$i"; setfattr -n user.tag.late -v "" "$MNT/many/late$i"; done
unmount_volume "$MNT"
mount_volume "$VOL" "$MNT"
got=$("$METAFS" find "$MNT" --consistent --count tag:late)
[ "$got" = 50 ] || fail "changes made while no indexer ran: found $got of 50"

# metafs reindex builds a new index behind the alias; the answers stay
before_count=$("$METAFS" find "$MNT" --consistent --count type:f)
must "$METAFS" reindex "$VOL"
after_count=$("$METAFS" find "$MNT" --consistent --count type:f)
[ "$before_count" = "$after_count" ] || fail "reindex changed the answer: $before_count files, then $after_count"
python3 "$ORACLE" check "$MNT" "$VOL" "$METAFS" "$SEED" 9 "$(( NQ / 2 ))" || fail "after reindex: mismatches above"

# an API key from the environment instead of a password
cp "$VOL/search.conf" "$E2E_TMP/good.conf"
grep -v '^user\|^password_file' "$E2E_TMP/good.conf" >"$VOL/search.conf"
got=$(METAFS_ES_API_KEY=test-key-1 "$METAFS" find "$MNT" --count tag:late)
[ "$got" = 50 ] || fail "with an API key: found $got of 50"
out=$(METAFS_ES_API_KEY=wrong-key "$METAFS" find "$MNT" --count tag:late 2>&1) && fail "a wrong API key was accepted: $out"
cp "$E2E_TMP/good.conf" "$VOL/search.conf"

# metafs stats: the backend, the lag, the parked document
"$METAFS" find "$MNT" --consistent --count tag:late >/dev/null
st=$("$METAFS" stats "$MNT" --json | python3 -c '
import json, sys
o = json.load(sys.stdin)
print(o["index_backend"], o["index_lag"], o["index_parked"])')
[ "$st" = "elasticsearch 0 1" ] || fail "metafs stats: backend, lag, parked = $st (expected: elasticsearch 0 1)"

v=$(violations)
[ -z "$v" ] || fail "the server saw requests the API does not allow: $v"
echo "PASS [$E2E_NAME]"
