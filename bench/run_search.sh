#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Search benchmark, side by side in one run:
#   bench/run_search.sh [--quick] [FILES]
# 1. bench_index (below FUSE): indexing throughput, full reindex, freshness at
#    5 000 changes/s, query latency p50/p99 for tag, name-word, attribute-range
#    and JSON-field queries;
# 2. through a real mount of the same volume: `metafs find` against find(1)
#    (and getfattr for tags) for the same questions, and against plocate for
#    a name query, with plocate's staleness after a change.
# Writes bench/results/search.md and search.json. Needs root and /dev/fuse.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=1000000
RUNS=20
if [ "${1:-}" = --quick ]; then
	FILES=20000
	RUNS=5
	shift
fi
FILES=${1:-$FILES}
tools/install-deps.sh
command -v plocate >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq plocate >/dev/null; }
tools/build.sh build
METAFS=build/tools/metafs
WORK=$(mktemp -d /tmp/metafs-bench-search.XXXXXX)
MNT=$WORK/mnt
cleanup() {
	fusermount3 -u "$MNT" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$MNT" bench/results

echo "== building a volume of $FILES files with tags and JSON xattrs (below FUSE)" >&2
build/bench/bench_index "$WORK/vol" "$FILES" 5000 >"$WORK/index.json"

"$METAFS" mount "$WORK/vol" "$MNT"
"$METAFS" find "$MNT" tag:urgent --consistent --count >/dev/null

# median of RUNS timings of a command, in ms
median_ms() {
	local t=()
	for _ in $(seq 1 "$RUNS"); do
		local s e
		s=$(date +%s%N)
		"$@" >/dev/null 2>&1 || true
		e=$(date +%s%N)
		t+=($(((e - s) / 1000)))
	done
	printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]/1000}'
}

echo "== metafs find against find(1) over the mount" >&2
q_name_m=$(median_ms "$METAFS" find "$MNT" 'name:invoice' --limit 100)
q_name_f=$(median_ms find "$MNT" -name '*invoice*')
q_size_m=$(median_ms "$METAFS" find "$MNT" 'size:>0' --limit 100)
q_size_f=$(median_ms find "$MNT" -size +0c)
# find(1) has no tag search: getfattr over every file is what a user would run
RUNS_SAVE=$RUNS
RUNS=1
q_tag_f=$(median_ms sh -c "getfattr -R -n user.xdg.tags '$MNT' 2>/dev/null | grep -c urgent")
RUNS=$RUNS_SAVE
q_tag_m=$(median_ms "$METAFS" find "$MNT" 'tag:urgent' --limit 100)

echo "== plocate for a name query, and its staleness" >&2
s=$(date +%s%N)
updatedb -U "$MNT" -o "$WORK/plocate.db" --require-visibility 0
updatedb_ms=$((($(date +%s%N) - s) / 1000000))
q_name_p=$(median_ms plocate -d "$WORK/plocate.db" invoice)
touch "$MNT/d00000/fresh-invoice-file.dat"
s=$(date +%s%N)
until "$METAFS" find "$MNT" 'name:fresh' | grep -q fresh-invoice; do sleep 0.01; done
fresh_metafs_ms=$((($(date +%s%N) - s) / 1000000))
plocate_sees=$(plocate -d "$WORK/plocate.db" fresh-invoice | grep -c fresh || true)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.1f", b / a; else print "-" }'; }
python3 - "$WORK/index.json" >bench/results/search.json <<PY
import json, sys
r = json.load(open(sys.argv[1]))
r["through_mount"] = {
  "name_query_ms": {"metafs_find": $q_name_m, "find": $q_name_f, "plocate": $q_name_p},
  "size_query_ms": {"metafs_find": $q_size_m, "find": $q_size_f},
  "tag_query_ms": {"metafs_find": $q_tag_m, "getfattr_walk": $q_tag_f},
  "plocate_updatedb_ms": $updatedb_ms,
  "new_file_findable_ms": {"metafs_find": $fresh_metafs_ms, "plocate": None if $plocate_sees == 0 else 0},
}
json.dump(r, sys.stdout, indent=1)
PY
{
	echo "# Search benchmark ($FILES files, $(date -u +%Y-%m-%d))"
	echo
	python3 - bench/results/search.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("| figure | value |\n| --- | --- |")
print(f"| changelog records | {r['changelog_records']} |")
print(f"| indexing throughput | {r['index_records_per_s']} records/s |")
print(f"| full reindex | {r['reindex_s']} s |")
print(f"| freshness at {r['freshness_rate_per_s']:.0f} changes/s | p50 {r['freshness_p50_ms']} ms, p99 {r['freshness_p99_ms']} ms |")
for k, q in r["queries"].items():
    print(f"| query `{q['query']}` ({q['results']} results) | p50 {q['p50_ms']} ms, p99 {q['p99_ms']} ms |")
print()
print("Through the mount (median of runs, whole commands; ratio = other / metafs find):")
print()
print("| question | metafs find | other | ratio |\n| --- | --- | --- | --- |")
m = r["through_mount"]
print(f"| name word | {m['name_query_ms']['metafs_find']} ms | find -name: {m['name_query_ms']['find']} ms | {m['name_query_ms']['find']/max(m['name_query_ms']['metafs_find'],0.01):.1f}x |")
print(f"| name word | {m['name_query_ms']['metafs_find']} ms | plocate: {m['name_query_ms']['plocate']} ms | {m['name_query_ms']['plocate']/max(m['name_query_ms']['metafs_find'],0.01):.1f}x |")
print(f"| size | {m['size_query_ms']['metafs_find']} ms | find -size: {m['size_query_ms']['find']} ms | {m['size_query_ms']['find']/max(m['size_query_ms']['metafs_find'],0.01):.1f}x |")
print(f"| tag | {m['tag_query_ms']['metafs_find']} ms | getfattr -R: {m['tag_query_ms']['getfattr_walk']} ms | {m['tag_query_ms']['getfattr_walk']/max(m['tag_query_ms']['metafs_find'],0.01):.1f}x |")
print()
print(f"A new file is findable with metafs find after {m['new_file_findable_ms']['metafs_find']} ms; "
      f"plocate {'sees it only after updatedb, which takes ' + str(m['plocate_updatedb_ms']) + ' ms here' if m['new_file_findable_ms']['plocate'] is None else 'saw it'}.")
PY
} >bench/results/search.md
cat bench/results/search.md
