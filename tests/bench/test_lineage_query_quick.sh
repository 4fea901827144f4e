#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The lineage query benchmark in its quick mode (20,000 files): it checks on
# its way that the index followed and the index rebuilt are the same, and
# that derived-from: gives the same files from the index, from a walk of the
# store and from a scan of every record. No speed is asserted here.
set -euo pipefail
OUT=$(mktemp -d /tmp/metafs-test-lineage-query.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
"$BUILD/bench/bench_lineage" "$OUT/vol" 20000 >"$OUT/out.json" 2>"$OUT/err" || { cat "$OUT/err" >&2; exit 1; }
python3 - "$OUT/out.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
q, w = r["queries"], r["walks"]
assert q["derived_from_raw"]["results"] > 0, q
assert q["derived_from_copied_file"]["results"] >= 2000, q["derived_from_copied_file"]
assert q["generated_by_page"]["results"] == 100, q["generated_by_page"]
assert w["lineage_up_model"]["results"] > 100, w["lineage_up_model"]
assert w["descendants_walk_raw"]["results"] == q["derived_from_raw"]["results"], (w, q)
print("ok: %d files, derived-from:RAW %s results, p50 %.3f ms" % (
    r["files"], q["derived_from_raw"]["results"], q["derived_from_raw"]["p50_ms"]))
PY
