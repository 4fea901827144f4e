#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The cost of lineage capture: the same workloads on two mounts of two fresh
# volumes, one capturing (the default) and one with -o nolineage, run in
# turns in the same run; medians and the ratio capture/no-capture.
#
#   copy   cp -r of many small files into the mount
#   python a Python pipeline: each round reads 20 inputs and writes 5 outputs
#   build  a C project of generated sources compiled with make -j2
#
# usage: bench/run_lineage.sh [--quick] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
METAFS=${METAFS:-$here/../build/tools/metafs}
quick=0
[ "${1:-}" = "--quick" ] && { quick=1; shift; }
rounds=${1:-$((quick ? 3 : 5))}
files=$((quick ? 5000 : 100000))
loops=$((quick ? 50 : 300))
units=$((quick ? 40 : 200))

tmp=$(mktemp -d /tmp/metafs-bench-lineage.XXXXXX)
cleanup() {
    for m in "$tmp/on" "$tmp/off"; do
        fusermount3 -u "$m" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

progress() {
    [ -t 2 ] && printf '\r%-70s' "$*" >&2 || true
}

# the inputs, on the local disk
mkdir -p "$tmp/src/files" "$tmp/src/proj"
/usr/bin/python3 - "$tmp/src" "$files" "$units" <<'PYEOF'
import os, sys
root, files, units = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(files):
    d = os.path.join(root, "files", "d%03d" % (i // 1000))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d" % i), "w") as f:
        f.write(("line %d\n" % i) * (1 + i % 40))
proj = os.path.join(root, "proj")
with open(os.path.join(proj, "common.h"), "w") as f:
    f.write("#include <stdio.h>\n#include <string.h>\nint work(int);\n")
for u in range(units):
    with open(os.path.join(proj, "u%03d.c" % u), "w") as f:
        f.write('#include "common.h"\n')
        for k in range(30):
            f.write("static int f%d(int x) { char b[64]; snprintf(b, sizeof b, \"%%d\", x * %d); return (int)strlen(b) + x; }\n" % (k, k + u))
        f.write("int g%d(int x) { return %s; }\n" % (u, " + ".join("f%d(x)" % k for k in range(30))))
with open(os.path.join(proj, "main.c"), "w") as f:
    f.write('#include "common.h"\n')
    for u in range(units):
        f.write("int g%d(int);\n" % u)
    f.write("int main(void) { int s = 0;\n")
    for u in range(units):
        f.write("  s += g%d(%d);\n" % (u, u))
    f.write('  printf("%d\\n", s); return 0; }\n')
with open(os.path.join(proj, "Makefile"), "w") as f:
    objs = " ".join("u%03d.o" % u for u in range(units)) + " main.o"
    f.write("prog: %s\n\tcc -o $@ $^\n%%.o: %%.c common.h\n\tcc -O1 -c $< -o $@\n" % objs)
for i in range(20):
    with open(os.path.join(root, "in%02d.csv" % i), "w") as f:
        f.write("".join("%d,%d\n" % (i, j) for j in range(200)))
PYEOF
cat >"$tmp/src/pipeline.py" <<'PYEOF'
import os, sys
d, loops = sys.argv[1], int(sys.argv[2])
for r in range(loops):
    rows = []
    for i in range(20):
        with open(os.path.join(d, "in%02d.csv" % i)) as f:
            rows.extend(f.read().splitlines())
    for k in range(5):
        with open(os.path.join(d, "out%d.csv" % k), "w") as f:
            f.write("\n".join(rows[k::5]))
PYEOF

for side in on off; do
    "$METAFS" format "$tmp/vol-$side" >/dev/null
    mkdir -p "$tmp/$side"
    opts=noindex
    [ "$side" = off ] && opts=noindex,nolineage
    "$METAFS" mount "$tmp/vol-$side" "$tmp/$side" -o "$opts"
done

declare -A times
run() {
    local name=$1 side=$2 mnt=$tmp/$2 t0 t1
    rm -rf "${mnt:?}/$name"
    mkdir -p "$mnt/$name"
    sync
    t0=$(date +%s%N)
    case $name in
    copy) cp -r "$tmp/src/files" "$mnt/copy/" ;;
    python)
        cp "$tmp"/src/in*.csv "$mnt/python/"
        t0=$(date +%s%N)
        /usr/bin/python3 "$tmp/src/pipeline.py" "$mnt/python" "$loops" ;;
    build)
        cp "$tmp"/src/proj/* "$mnt/build/"
        t0=$(date +%s%N)
        make -s -C "$mnt/build" -j2 >/dev/null ;;
    esac
    t1=$(date +%s%N)
    times[$name.$side]+="$(((t1 - t0) / 1000000)) "
}

for name in copy python build; do
    for r in $(seq 1 "$rounds"); do
        # alternate which side goes first
        if [ $((r % 2)) = 1 ]; then order="on off"; else order="off on"; fi
        for side in $order; do
            progress "$name: round $r/$rounds, capture $side"
            run "$name" "$side"
        done
    done
done
[ -t 2 ] && printf '\r%-70s\r' '' >&2

median() {
    tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

printf '%-8s %12s %12s %8s   %s\n' workload "capture ms" "off ms" ratio "(medians of $rounds rounds)"
for name in copy python build; do
    on=$(echo "${times[$name.on]}" | median)
    off=$(echo "${times[$name.off]}" | median)
    ratio=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }')
    case $name in
    copy) what="cp -r of $files small files" ;;
    python) what="$loops rounds of 20 reads + 5 writes" ;;
    build) what="make -j2 of $((units + 1)) C files" ;;
    esac
    printf '%-8s %12s %12s %8s   %s\n' "$name" "$on" "$off" "$ratio" "$what"
done
on_records=$("$METAFS" changelog "$tmp/vol-on" --json | grep -Ec '"op":"(used|generated|process)"' || true)
echo "provenance records written on the capturing volume: $on_records"
