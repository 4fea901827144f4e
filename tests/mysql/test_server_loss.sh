#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The MySQL store when its server goes away and comes back, through a real
# mount: a URL whose first host is down fails over to the next; while the
# only live server is killed (kill -9) file creations fail with EIO, the
# mount stays up, and every creation that succeeded is intact after the
# server restarts; then the mount works again without a remount.
source "$(dirname "$0")/../e2e/lib.sh"
source "$(dirname "$0")/lib_mariadb.sh"
e2e_init
command -v mariadbd >/dev/null || skip "mariadbd is not installed"
export METAFS_STATE_DIR=$E2E_TMP/state
trap 'mariadb_stop db; rm -rf "$MARIADB_DIR"; e2e_cleanup' EXIT

port=$(free_port)
dead=$(free_port)
mariadb_start db "$port" || fail "cannot start mariadbd"
VOL="mysql://root@127.0.0.1:$dead,127.0.0.1:$port/loss?connect_wait=3"
MNT=$E2E_TMP/mnt
new_volume "$VOL"
mount_volume "$VOL" "$MNT"
must sh -c "echo first > '$MNT/first'"
[ "$(cat "$MNT/first")" = first ] || fail "a file written through the second host reads back wrong"

# a writer that notes each file whose creation and close succeeded
acked=$E2E_TMP/acked
: >"$acked"
# (a shell's redirection ignores an error from close(), where the write is
# committed: Python's close raises it)
/usr/bin/python3 - "$MNT" "$acked" "$E2E_TMP/stop" <<'PYEOF' &
import os, sys, time
mnt, acked, stop = sys.argv[1:4]
i = 0
while not os.path.exists(stop):
    i += 1
    try:
        with open(os.path.join(mnt, "f%d" % i), "w") as f:
            f.write("content %d\n" % i)
    except OSError:
        pass
    else:
        with open(acked, "a") as a:
            a.write("%d\n" % i)
    time.sleep(0.02)
PYEOF
writer=$!
sleep 2
n_before=$(wc -l <"$acked")
[ "$n_before" -gt 10 ] || fail "only $n_before files written in 2 s before the server was killed"
mariadb_kill db
note "killed mariadbd after $n_before files"
sleep 4
if touch "$MNT/during" 2>"$E2E_TMP/err"; then
	fail "a create succeeded with no server at all"
fi
grep -qi "input/output error" "$E2E_TMP/err" || fail "a create without a server should fail with EIO, got: $(cat "$E2E_TMP/err")"
is_mounted "$MNT" || fail "the mount went away with the server"
mariadb_launch db "$port" || fail "cannot restart mariadbd"
note "restarted mariadbd"
sleep 3
touch "$E2E_TMP/stop"
wait "$writer"
n=$(wc -l <"$acked")
[ "$n" -gt "$n_before" ] || fail "no file was written after the server came back ($n acknowledged)"
while read -r i; do
	got=$(cat "$MNT/f$i" 2>&1) || fail "f$i, acknowledged, is missing after the restart: $got"
	[ "$got" = "content $i" ] || fail "f$i, acknowledged, reads '$got'"
done <"$acked"
# nothing half-made: every name that exists reads whole
for f in "$MNT"/f[0-9]*; do
	i=${f##*/f}
	[ "$(cat "$f")" = "content $i" ] || [ ! -s "$f" ] || fail "$f holds '$(cat "$f")'"
done
must sh -c "echo after > '$MNT/after'"
[ "$(cat "$MNT/after")" = after ] || fail "the mount does not work after the server came back"
unmount_volume "$MNT"
must "$METAFS" fsck "$VOL"
note "$n creations acknowledged; all intact"
echo "PASS [$E2E_NAME]"
