#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# The MySQL store beside the embedded store, in the same run: the same
# metadata workloads on a mount of each (fresh volumes, -o noindex), in
# turns, medians of the rounds, ops/s and the ratio MySQL/embedded; for
# the MySQL store also the round trips per operation, counted by the
# server (statements executed plus commits and rollbacks). Two mounts of
# one MySQL volume creating files at once are compared with one.
# The server is a private mariadbd on loopback, started and stopped here.
#
# usage: bench/run_mysql.sh [--quick] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
METAFS=${METAFS:-$here/../build/tools/metafs}
quick=0
[ "${1:-}" = "--quick" ] && { quick=1; shift; }
rounds=${1:-$((quick ? 3 : 5))}
n=$((quick ? 500 : 5000))
small=$((quick ? 500 : 5000))

tmp=$(mktemp -d /tmp/metafs-bench-mysql.XXXXXX)
chmod 755 "$tmp" # mariadbd runs as mysql
export MARIADB_DIR=$tmp/db METAFS_STATE_DIR=$tmp/state
mkdir -p "$MARIADB_DIR"
# shellcheck source=../tests/mysql/lib_mariadb.sh
source "$here/../tests/mysql/lib_mariadb.sh"
cleanup() {
    for m in "$tmp"/mnt-*; do
        fusermount3 -u "$m" 2>/dev/null || true
    done
    mariadb_stop bench
    rm -rf "$tmp"
}
trap cleanup EXIT

progress() {
    [ -t 2 ] && printf '\r%-70s' "$*" >&2 || true
}

port=$(free_port)
mariadb_start bench "$port" --innodb-buffer-pool-size=256M >/dev/null
url=mysql://root@127.0.0.1:$port/bench
"$METAFS" format "$tmp/vol-embedded" >/dev/null
"$METAFS" format "$url" >/dev/null
mkdir -p "$tmp/mnt-embedded" "$tmp/mnt-mysql" "$tmp/mnt-mysql2"
for m in "$tmp/vol-embedded mnt-embedded" "$url mnt-mysql" "$url mnt-mysql2"; do
    set -- $m
    "$METAFS" mount "$1" "$tmp/$2" -o noindex 2>>"$tmp/daemons.log"
done

mkdir -p "$tmp/src"
/usr/bin/python3 - "$tmp/src" "$small" <<'PYEOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%02d" % (i // 500))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d" % i), "wb") as f:
        f.write(os.urandom(1024 + (i * 37) % 3072))
PYEOF
cat >"$tmp/ops.py" <<'PYEOF'
import os, sys, time
op, d, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.monotonic()
if op == "create":
    for i in range(n):
        os.close(os.open(os.path.join(d, "f%d" % i), os.O_CREAT | os.O_WRONLY, 0o644))
elif op == "stat":
    for i in range(n):
        os.stat(os.path.join(d, "f%d" % i))
elif op == "rename":
    for i in range(n):
        os.rename(os.path.join(d, "f%d" % i), os.path.join(d, "g%d" % i))
elif op == "unlink":
    for i in range(n):
        os.unlink(os.path.join(d, "g%d" % i))
print(int((time.monotonic() - t0) * 1000))
PYEOF

trips() { # server-side count of round trips so far
    mariadb_sql bench "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_stmt_execute','Com_commit','Com_rollback')" |
        awk '{ s += $2 } END { print s }'
}

declare -A ms ops rt
note() { # KEY MS OPS
    ms[$1]+="$2 "
    ops[$1]=$3
}

one_round() { # SIDE
    local side=$1 mnt=$tmp/mnt-$1 d t before
    d=$mnt/meta
    rm -rf "$d"
    mkdir -p "$d"
    for op in create stat rename unlink; do
        # stat looks names up afresh: the kernel's entries and attributes are dropped
        if [ "$op" = stat ]; then
            sync
            echo 2 >/proc/sys/vm/drop_caches
        fi
        before=0
        if [ "$side" = mysql ]; then before=$(trips); fi
        t=$(/usr/bin/python3 "$tmp/ops.py" "$op" "$d" "$n")
        note "$op.$side" "$t" "$n"
        if [ "$side" = mysql ]; then rt[$op]+="$((($(trips) - before) * 100 / n)) "; fi
    done
    rm -rf "$mnt/small"
    sync
    before=0
    if [ "$side" = mysql ]; then before=$(trips); fi
    local t0 t1
    t0=$(date +%s%N)
    cp -r "$tmp/src" "$mnt/small"
    t1=$(date +%s%N)
    note "cp-small.$side" "$(((t1 - t0) / 1000000))" "$small"
    if [ "$side" = mysql ]; then rt[cp-small]+="$((($(trips) - before) * 100 / small)) "; fi
    sync
    echo 3 >/proc/sys/vm/drop_caches
    t0=$(date +%s%N)
    find "$mnt/small" -type f -exec cat {} + >/dev/null
    t1=$(date +%s%N)
    note "read-small.$side" "$(((t1 - t0) / 1000000))" "$small"
}

two_mounts() { # creations by two mounts of the MySQL volume at once
    local a=$tmp/mnt-mysql/two-a b=$tmp/mnt-mysql2/two-b t0 t1
    rm -rf "$a" "$b"
    mkdir -p "$a" "$b"
    t0=$(date +%s%N)
    /usr/bin/python3 "$tmp/ops.py" create "$a" "$n" >/dev/null &
    local other=$!
    /usr/bin/python3 "$tmp/ops.py" create "$b" "$n" >/dev/null
    wait "$other"
    t1=$(date +%s%N)
    note "create-2mounts.mysql" "$(((t1 - t0) / 1000000))" "$((2 * n))"
}

for r in $(seq 1 "$rounds"); do
    if [ $((r % 2)) = 1 ]; then order="embedded mysql"; else order="mysql embedded"; fi
    for side in $order; do
        progress "round $r/$rounds: $side"
        one_round "$side"
    done
    progress "round $r/$rounds: two mounts"
    two_mounts
done
[ -t 2 ] && printf '\r%-70s\r' '' >&2

median() {
    tr ' ' '\n' | grep -v '^$' | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
rate() { # OPS MS
    awk -v o="$1" -v m="$2" 'BEGIN { printf "%.0f", (m > 0 ? o * 1000 / m : 0) }'
}

echo "MySQL store (mariadbd on loopback) beside the embedded store; medians of $rounds rounds"
printf '%-16s %12s %12s %8s %12s\n' workload "embedded/s" "mysql/s" ratio "trips/op"
for w in create stat rename unlink cp-small read-small; do
    e=$(echo "${ms[$w.embedded]}" | median)
    m=$(echo "${ms[$w.mysql]}" | median)
    re=$(rate "${ops[$w.embedded]}" "$e")
    rm_=$(rate "${ops[$w.mysql]}" "$m")
    ratio=$(awk -v a="$rm_" -v b="$re" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
    t="-"
    [ -n "${rt[$w]:-}" ] && t=$(echo "${rt[$w]}" | median | awk '{ printf "%.2f", $1 / 100 }')
    printf '%-16s %12s %12s %8s %12s\n' "$w" "$re" "$rm_" "$ratio" "$t"
done
one=$(rate "${ops[create.mysql]}" "$(echo "${ms[create.mysql]}" | median)")
two=$(rate "${ops[create-2mounts.mysql]}" "$(echo "${ms[create-2mounts.mysql]}" | median)")
printf 'two mounts creating at once: %s/s together, %s/s for one mount alone (ratio %s)\n' "$two" "$one" \
    "$(awk -v a="$two" -v b="$one" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')"
echo "(ops/s: creates, stats, renames, unlinks of $n names; cp-small and read-small: $small files of 1-4 KiB)"
