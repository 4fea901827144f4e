#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Elasticsearch/OpenSearch backend against the local test server
# (tests/e2e/helpers/mock_es.py), side by side with the SQLite backend:
#   bench/run_search_es.sh [--quick] [FILES]
# For each backend, on a volume of FILES files, each with tags and a JSON
# xattr (3 changelog records a file):
#   - following the changelog: `metafs indexer VOLUME --once` over every
#     record, in records/s; for the cluster also the requests and the bytes
#     sent for each 1,000 changelog records;
#   - a full `metafs reindex`, in documents/s.
# The test server is a Python program: its own speed bounds the cluster
# figures, which measure the server as much as the client. The requests a
# thousand changes are the client's alone. No real cluster is measured.
# Writes bench/results/search_es.md and search_es.json.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=20000
if [ "${1:-}" = --quick ]; then
	FILES=2000
	shift
fi
FILES=${1:-$FILES}
tools/install-deps.sh
tools/build.sh build
METAFS=$PWD/build/tools/metafs
WORK=$(mktemp -d /tmp/metafs-bench-es.XXXXXX)
SERVER=
cleanup() {
	fusermount3 -u "$WORK/mnt" 2>/dev/null || true
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/mnt" bench/results

: >"$WORK/requests.jsonl"
python3 tests/e2e/helpers/mock_es.py --port-file "$WORK/port" --log "$WORK/requests.jsonl" 2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 1 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
[ -s "$WORK/port" ] || { echo "the test server did not start" >&2; exit 1; }

now() { date +%s.%N; }

# one backend: prints a JSON object
run() {
	local kind=$1 vol=$WORK/vol-$1
	"$METAFS" format "$vol" >/dev/null
	if [ "$kind" = cluster ]; then
		printf 'backend = elasticsearch\nurl = http://127.0.0.1:%s\nindex = bench\n' "$(cat "$WORK/port")" \
			>"$vol/search.conf"
	fi
	"$METAFS" reindex "$vol" >/dev/null # an empty index, at the start of the changelog
	"$METAFS" mount "$vol" "$WORK/mnt" -o noindex
	echo "== $kind: creating $FILES files with tags and JSON xattrs" >&2
	python3 - "$WORK/mnt" "$FILES" <<'EOF'
import json, os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
r = random.Random(7)
tags = ["beach", "urgent", "family", "work", "review", "2024", "keep", "sunset"]
for i in range(n):
    if i % 1000 == 0:
        d = os.path.join(root, "d%05d" % (i // 1000))
        os.mkdir(d)
    p = os.path.join(d, "file-%d.dat" % i)
    with open(p, "w"):
        pass
    os.setxattr(p, "user.xdg.tags", ",".join(r.sample(tags, 2)).encode())
    os.setxattr(p, "user.annotations", json.dumps({"bicycles": r.randint(0, 19), "score": r.randint(0, 999) / 10,
                                                   "camera": "cam%d" % r.randint(0, 49)}).encode())
EOF
	fusermount3 -u "$WORK/mnt"
	local records before t0 t1 t2
	records=$("$METAFS" stats "$vol" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["changelog_last"])')
	before=$(wc -l <"$WORK/requests.jsonl")
	echo "== $kind: following $records changelog records" >&2
	t0=$(now)
	"$METAFS" indexer "$vol" --once >/dev/null
	t1=$(now)
	echo "== $kind: full reindex" >&2
	"$METAFS" reindex "$vol" >/dev/null
	t2=$(now)
	python3 - "$kind" "$records" "$t0" "$t1" "$t2" "$FILES" "$WORK/requests.jsonl" "$before" <<'EOF'
import json, sys
kind, records, t0, t1, t2, files, log, before = sys.argv[1:]
records, files, before = int(records), int(files), int(before)
t0, t1, t2 = float(t0), float(t1), float(t2)
o = {"backend": kind, "files": files, "changelog_records": records,
     "follow_records_per_s": round(records / (t1 - t0)), "reindex_docs_per_s": round(files / (t2 - t1))}
if kind == "cluster":
    rows = [json.loads(l) for l in open(log)][before:]
    # the requests of the follow phase: up to the first request of the reindex
    # (its index creation, a PUT of a new concrete index)
    cut = next((i for i, r in enumerate(rows) if r["method"] == "PUT" and r["path"].count("/") == 1), len(rows))
    follow = rows[:cut]
    writes = [r for r in follow if r["path"].endswith("/_bulk") or (r["method"] == "PUT" and "/_doc/" in r["path"])]
    o["follow_requests"] = len(follow)
    o["follow_write_requests_per_1000_records"] = round(1000 * len(writes) / records, 2)
    o["follow_bytes_per_1000_records"] = round(1000 * sum(r["bytes"] for r in writes) / records)
    bulk = [r for r in rows[cut:] if r["path"].endswith("/_bulk")]
    o["reindex_bulk_requests"] = len(bulk)
print(json.dumps(o))
EOF
}

sq=$(run sqlite)
es=$(run cluster)
python3 - "$sq" "$es" <<'EOF'
import json, sys
sq, es = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {"sqlite": sq, "cluster": es,
       "ratio_follow": round(es["follow_records_per_s"] / sq["follow_records_per_s"], 3),
       "ratio_reindex": round(es["reindex_docs_per_s"] / sq["reindex_docs_per_s"], 3)}
json.dump(out, open("bench/results/search_es.json", "w"), indent=1)
md = ["# Search backends side by side (%d files, %d changelog records)" % (sq["files"], sq["changelog_records"]), "",
      "The cluster is tests/e2e/helpers/mock_es.py, a Python test server: its speed bounds the cluster figures.", "",
      "| figure | SQLite | cluster (test server) | cluster / SQLite |", "|---|---|---|---|",
      "| following the changelog, records/s | %d | %d | %.3f |" % (sq["follow_records_per_s"], es["follow_records_per_s"], out["ratio_follow"]),
      "| full reindex, documents/s | %d | %d | %.3f |" % (sq["reindex_docs_per_s"], es["reindex_docs_per_s"], out["ratio_reindex"]),
      "", "Cluster requests while following: %d in all; %.2f write requests and %d bytes a 1,000 changelog records; "
      "the reindex took %d _bulk requests." % (es["follow_requests"], es["follow_write_requests_per_1000_records"],
                                              es["follow_bytes_per_1000_records"], es["reindex_bulk_requests"])]
open("bench/results/search_es.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
EOF
