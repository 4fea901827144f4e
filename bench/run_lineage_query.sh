#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Lineage queries over a volume of many files (1,000,000 by default), below
# FUSE: bench_lineage builds a data pipeline's worth of lineage through the
# namespace and provenance layers, indexes it, and times derived-from: and
# generated-by: in the SQLite index, the store walks of `metafs lineage`,
# and, beside them in the same run, the reference: the same derived-from:
# answer from a scan of every lineage record (reported as a ratio).
#   bench/run_lineage_query.sh [--quick] [FILES]
# Writes bench/results/lineage-query.json and prints a table.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=1000000
if [ "${1:-}" = --quick ]; then
	FILES=20000
	shift
fi
FILES=${1:-$FILES}
BUILD=${BUILD:-build}
tools/install-deps.sh
tools/build.sh "$BUILD"
WORK=$(mktemp -d /tmp/metafs-bench-lineage-query.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p bench/results
echo "== $FILES files of pipeline lineage, indexed, then queried" >&2
"$BUILD/bench/bench_lineage" "$WORK/vol" "$FILES" >"$WORK/out.json" 2>"$WORK/err" ||
	{ cat "$WORK/err" >&2; exit 1; }
cp "$WORK/out.json" bench/results/lineage-query.json
python3 - "$WORK/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("%d files, %d changelog records: built in %.0f s, indexed at %d records/s, reindexed in %.1f s, index %.0f MB"
      % (r["files"], r["changelog_records"], r["build_s"], r["index_records_per_s"], r["reindex_s"],
         r["index_bytes"] / 1e6))
print("%-58s %9s %9s %9s" % ("query", "results", "p50 ms", "p99 ms"))
for part in ("queries", "walks"):
    for k, q in r[part].items():
        print("%-58s %9d %9.3f %9.3f" % (q["query"][:58], q["results"], q["p50_ms"], q["p99_ms"]))
print("derived-from: a scan of every lineage record takes %dx the index's time for the same files"
      % r["ratio_reference_to_index"])
PY
