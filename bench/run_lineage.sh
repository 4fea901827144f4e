#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The cost of lineage capture: the same workloads on two mounts of two fresh
# volumes, one capturing (the default) and one with -o nolineage, run in
# turns in the same run (which side goes first alternates each round).
#
#   copy    cp -r of many small files into the mount
#   python  a Python pipeline: each round reads 20 inputs and writes 5 outputs
#   build   a C project of generated sources compiled with make -j2
#   within  cp -r of the copied tree to another directory of the same mount:
#           every copy is a use and a version (not one of the targets: it
#           shows what lineage costs when everything read is in the volume)
#
# Each round runs each workload three times: on one side, then the other
# (which goes first alternates), then on both at the same moment, so that
# both meet the same machine: on a shared machine whose speed drifts from
# minute to minute, that ratio is the steadier one. Before each, both
# daemons are let go idle (their flushes and compactions done). For each
# workload and way: the median wall time of each side, the median of the
# rounds' ratios capture/off with the lowest and highest, and the ratio of
# the daemons' CPU time. Machine-readable: bench/results/lineage.json.
#
# usage: bench/run_lineage.sh [--quick] [--workloads copy,python,build,within] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
METAFS=${METAFS:-$here/../build/tools/metafs}
quick=0
workloads="copy python build within"
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --workloads) workloads=${2//,/ }; shift ;;
    *) break ;;
    esac
    shift
done
for w in $workloads; do
    case $w in copy | python | build | within) ;; *) echo "run_lineage.sh: no workload '$w'" >&2; exit 2 ;; esac
done
rounds=${1:-$((quick ? 3 : 5))}
files=$((quick ? 5000 : 100000))
loops=$((quick ? 50 : 1000))
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

declare -A pid
for side in on off; do
    "$METAFS" format "$tmp/vol-$side" >/dev/null
    mkdir -p "$tmp/$side"
    opts=noindex
    [ "$side" = off ] && opts=noindex,nolineage
    "$METAFS" mount "$tmp/vol-$side" "$tmp/$side" -o "$opts"
    pid[$side]=$(pgrep -f "mount $tmp/vol-$side " | head -1)
done

# the daemon's CPU time so far, in ms
cpu_ms() {
    awk -v t="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / t) }' "/proc/${pid[$1]}/stat"
}

# waits (a minute at most) until neither daemon used 20 ms of CPU in 0.5 s
quiesce() {
    local a b
    for _ in $(seq 1 120); do
        a=$(($(cpu_ms on) + $(cpu_ms off)))
        sleep 0.5
        b=$(($(cpu_ms on) + $(cpu_ms off)))
        [ $((b - a)) -lt 20 ] && return 0
    done
}

declare -A times cpus
prepare() { # NAME SIDE: the workload's directory, fresh, with its inputs
    local name=$1 mnt=$tmp/$2
    rm -rf "${mnt:?}/$name"
    mkdir -p "$mnt/$name"
    case $name in
    python) cp "$tmp"/src/in*.csv "$mnt/python/" ;;
    build) cp "$tmp"/src/proj/* "$mnt/build/" ;;
    within) cp -r "$tmp/src/files" "$mnt/within/src" ;;
    esac
}
work() { # NAME SIDE: the workload itself
    local name=$1 mnt=$tmp/$2
    case $name in
    copy) cp -r "$tmp/src/files" "$mnt/copy/" ;;
    python) /usr/bin/python3 "$tmp/src/pipeline.py" "$mnt/python" "$loops" ;;
    build) make -s -C "$mnt/build" -j2 >/dev/null ;;
    within) cp -r "$mnt/within/src" "$mnt/within/dst" ;;
    esac
}
timed() { # NAME SIDE KEY: runs the workload, notes its time and the daemon's CPU
    local t0 t1 c0 c1
    c0=$(cpu_ms "$2")
    t0=$(date +%s%N)
    work "$1" "$2" </dev/null
    t1=$(date +%s%N)
    c1=$(cpu_ms "$2")
    echo "$3 $(((t1 - t0) / 1000000)) $((c1 - c0))" >>"$tmp/figures"
}

: >"$tmp/figures"
for name in $workloads; do
    for r in $(seq 1 "$rounds"); do
        # one side after the other, which goes first alternating
        if [ $((r % 2)) = 1 ]; then order="on off"; else order="off on"; fi
        for side in $order; do
            progress "$name: round $r/$rounds, capture $side alone"
            prepare "$name" "$side"
            sync
            quiesce
            timed "$name" "$side" "seq.$name.$side"
        done
        # both sides at the same moment: the machine is the same for both
        progress "$name: round $r/$rounds, both sides at once"
        prepare "$name" on
        prepare "$name" off
        sync
        quiesce
        timed "$name" on "both.$name.on" &
        timed "$name" off "both.$name.off" &
        wait
    done
done
while read -r key ms cpu; do
    times[$key]+="$ms "
    cpus[$key]+="$cpu "
done <"$tmp/figures"
[ -t 2 ] && printf '\r%-70s\r' '' >&2

records=$("$METAFS" changelog "$tmp/vol-on" --json | grep -Ec '"op":"(used|generated|process)"|"file_version"' || true)
mkdir -p "$here/results"
/usr/bin/python3 - "$rounds" "$files" "$loops" "$units" "$records" "$here/results/lineage.json" <<PYEOF
import json, statistics, sys
rounds, files, loops, units, records, out = sys.argv[1:7]
times = {$(for k in "${!times[@]}"; do printf '"%s": [%s], ' "$k" "$(echo ${times[$k]} | tr ' ' ',')"; done)}
cpus = {$(for k in "${!cpus[@]}"; do printf '"%s": [%s], ' "$k" "$(echo ${cpus[$k]} | tr ' ' ',')"; done)}
what = {"copy": "cp -r of %s small files" % files, "python": "%s rounds of 20 reads + 5 writes" % loops,
        "build": "make -j2 of %d C files" % (int(units) + 1),
        "within": "cp -r of %s files inside the mount" % files}
res = {"rounds": int(rounds), "provenance_records": int(records), "workloads": {}}
print("ratio capture/off: the median of the rounds' ratios, with the lowest and highest; medians of %s rounds" % rounds)
print("%-7s %-9s %10s %10s %8s %16s %10s" % ("", "", "capture", "off", "ratio", "low..high", "daemon CPU"))
for name in ("copy", "python", "build", "within"):
    if "seq.%s.on" % name not in times:
        continue
    res["workloads"][name] = {"what": what[name]}
    for mode, label in (("seq", "alone"), ("both", "together")):
        on, off = times["%s.%s.on" % (mode, name)], times["%s.%s.off" % (mode, name)]
        ratios = sorted(a / b for a, b in zip(on, off))
        con, coff = cpus["%s.%s.on" % (mode, name)], cpus["%s.%s.off" % (mode, name)]
        cpu = statistics.median(con) / statistics.median(coff) if statistics.median(coff) else 0
        w = {"capture_ms": on, "off_ms": off, "capture_median_ms": statistics.median(on),
             "off_median_ms": statistics.median(off), "ratio_median": statistics.median(ratios),
             "ratio_low": ratios[0], "ratio_high": ratios[-1], "daemon_cpu_capture_ms": con,
             "daemon_cpu_off_ms": coff, "daemon_cpu_ratio": cpu}
        res["workloads"][name][label] = w
        print("%-7s %-9s %10d %10d %8.3f %7.3f..%-7.3f %10.3f" % (name if mode == "seq" else "", label,
              w["capture_median_ms"], w["off_median_ms"], w["ratio_median"], w["ratio_low"], w["ratio_high"], cpu))
    print("%-7s %s" % ("", what[name]))
print("alone: one side after the other (which first alternates); together: both at once, sharing the machine")
print("provenance records written on the capturing volume: %s" % records)
json.dump(res, open(out, "w"), indent=1)
PYEOF
