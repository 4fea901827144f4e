#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The filesystem benchmark harness works: bench/run_fs.py --quick runs every
# workload on every filesystem and writes a complete table, its JSON and a
# chart. No speed is asserted here; the figures live in bench/results/.
set -euo pipefail
[ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ] || { echo "needs root and /dev/fuse"; exit 77; }
for p in fio fs_mark gnuplot bindfs fuse-overlayfs; do
	command -v "$p" >/dev/null || { echo "$p is not installed (tools/install-deps.sh installs it)"; exit 1; }
done
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(mktemp -d /tmp/metafs-test-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

mkdir "$OUT/disk"
python3 "$ROOT/bench/run_fs.py" --quick --build "$BUILD" --out "$OUT" --dir "$OUT/disk" >"$OUT/stdout"

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
r = json.load(open(os.path.join(out, "fs.json")))
fss = r["filesystems"]
for want in ("metafs", "passthrough", "ext4", "bindfs", "fuse-overlayfs"):
    assert want in fss, f"{want} was not measured: {fss}"
metrics = {row["metric"]: row for row in r["table"]}
expected = ["meta.flat.create", "meta.flat.stat", "meta.flat.rename", "meta.flat.unlink",
            "meta.tree.create", "meta.tree.stat", "meta.tree.rename", "meta.tree.unlink",
            "list.walk", "small.write", "small.read", "small.fsmark", "large.seqwrite",
            "large.seqread", "large.randread", "list.big_create", "list.readdir", "real.tar",
            "real.git_status_cold", "real.git_status_warm"]
for m in expected:
    assert m in metrics, f"no row for {m}"
    for fs in fss:
        v = metrics[m]["values"][fs]
        assert v is not None and v > 0, f"{m} on {fs}: {v}"
    for ref, x in metrics[m]["ratios"].items():
        assert x is not None and x > 0, f"{m} ratio to {ref}: {x}"
for fs in ("metafs", "passthrough", "bindfs", "fuse-overlayfs"):
    for w in ("meta", "small", "large", "listing", "real"):
        v = r["rss_mib"][fs][w]
        assert v is not None and 0 < v < 4096, f"peak RSS of {fs} in {w}: {v}"
md = open(os.path.join(out, "fs.md")).read()
assert "| create, flat dir | ops/s |" in md and "× passthrough" in md, md
png = open(os.path.join(out, "fs.png"), "rb").read(8)
assert png == b"\x89PNG\r\n\x1a\n", "fs.png is not a PNG"
print("ok: %d rows, %d filesystems" % (len(metrics), len(fss)))
PY
grep -q "| create, flat dir |" "$OUT/stdout"
# nothing left behind: no mount, no work directory
if grep -q "$OUT/disk" /proc/self/mountinfo; then
	echo "the harness left a filesystem mounted"; exit 1
fi
if [ -n "$(ls -A "$OUT/disk")" ]; then
	echo "the harness left its work directory"; exit 1
fi
