#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Several mounts of one MySQL volume on one host (as on many hosts): each
# sees the others' changes.
#  - close-to-open: a file closed on mount A is read whole, new content and
#    new size, by an open on mount B that had the old content cached;
#  - a name made on A is found at once by B, which had just found it absent
#    (names found absent are not cached on a shared volume), and an open
#    with O_CREAT but not O_EXCL on B opens A's file instead of failing;
#  - with long entry and attribute timeouts (30 s) on B, A's chmod, rename,
#    unlink, append and setxattr still show on B within a few seconds: B
#    follows the changelog and drops what the kernel cached;
#  - with -o strict, every change shows at once;
#  - locks are coherent across mounts, and waiting ones do not stop a
#    mount answering, however many wait;
#  - a bad timeout option is refused.
# Run by tests/mysql/with_mariadb.sh, which sets METAFS_TEST_MYSQL.
source "$(dirname "$0")/../e2e/lib.sh"
e2e_init python3
[ -n "${METAFS_TEST_MYSQL:-}" ] || skip "needs METAFS_TEST_MYSQL (run through tests/mysql/with_mariadb.sh)"

VOL=$METAFS_TEST_MYSQL/shared_$$_$RANDOM
A=$E2E_TMP/a
B=$E2E_TMP/b
S=$E2E_TMP/s
new_volume "$VOL"
mount_volume "$VOL" "$A"
mount_volume "$VOL" "$B" -o attr_timeout=30,entry_timeout=30
mount_volume "$VOL" "$S" -o strict
N=$E2E_TMP/n
mount_volume "$VOL" "$N" -o negative_timeout=30

# Waits up to 10 s for a shell condition; prints how long it took (ms).
wait_for() {
    local what=$1 cond=$2 t0 i
    t0=$(now_ms)
    for i in $(seq 1 200); do
        if eval "$cond"; then
            echo $(($(now_ms) - t0))
            return 0
        fi
        sleep 0.05
    done
    fail "$what: not seen within 10 s"
}

# -------------------------------------------------------- close-to-open
printf 'old content\n' >"$A/doc"
[ "$(cat "$B/doc")" = "old content" ] || fail "B does not read the file A wrote"
[ "$(cat "$B/doc")" = "old content" ] || fail "B's second read differs"
# A rewrites it longer, and closes (Python: close errors are raised)
python3 - "$A/doc" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    f.write("new content, and longer than the old one\n")
EOF
got=$(cat "$B/doc")
[ "$got" = "new content, and longer than the old one" ] ||
    fail "close-to-open: B read '$got' after A closed the new content"
# and shorter again, appended to on B this time, read on A
python3 - "$B/doc" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    f.write("short\n")
with open(sys.argv[1], "a") as f:
    f.write("tail\n")
EOF
[ "$(cat "$A/doc")" = $'short\ntail' ] || fail "close-to-open: A read '$(cat "$A/doc")' after B's writes"
[ "$(stat -c %s "$A/doc")" = 11 ] || fail "A's size of doc is $(stat -c %s "$A/doc"), not 11"

# a bigger file, through chunks, and the page cache of the reader
head -c 3000000 /dev/urandom >"$E2E_TMP/big1"
head -c 2000000 /dev/urandom >"$E2E_TMP/big2"
cp "$E2E_TMP/big1" "$A/big"
cmp -s "$B/big" "$E2E_TMP/big1" || fail "B reads the 3 MB file A wrote wrong"
cp "$E2E_TMP/big2" "$A/big"
cmp -s "$B/big" "$E2E_TMP/big2" || fail "close-to-open: B reads stale bytes of the rewritten 3 MB file"

# -------------------------------------------------------- names
[ ! -e "$B/fresh" ] || fail "fresh exists before it was made"
echo made-on-a >"$A/fresh"
[ "$(cat "$B/fresh" 2>/dev/null)" = made-on-a ] ||
    fail "B, which had just found 'fresh' absent, does not find it right after A made it"

# O_CREAT without O_EXCL on a name another mount just made, where the kernel
# still holds the name as absent (negative_timeout=30, and the changelog not
# followed yet): the file is opened, not refused, and not truncated
for i in $(seq 1 20); do
    out=$(python3 - "$A/race$i" "$N/race$i" <<'EOF'
import os, sys
a, b = sys.argv[1:3]
os.stat(os.path.dirname(b))
try:
    os.stat(b)
except FileNotFoundError:
    pass
with open(a, "w") as f:
    f.write("from A\n")
fd = os.open(b, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
os.write(fd, b"from B\n")
os.close(fd)
try:
    os.open(b, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    print("O_EXCL succeeded")
except FileExistsError:
    pass
EOF
    ) || fail "O_CREAT on N of a name A just made failed: $out"
    [ -z "$out" ] || fail "race$i: $out"
    [ "$(cat "$A/race$i")" = $'from A\nfrom B' ] || fail "race$i holds '$(cat "$A/race$i")'"
done

# -------------------------------------------------------- B follows A's changes
mkdir "$A/d"
echo x >"$A/d/f"
stat "$B/d/f" >/dev/null || fail "B cannot see d/f"
[ "$(stat -c %a "$B/d/f")" = 644 ] || fail "d/f mode on B is $(stat -c %a "$B/d/f")"
chmod 600 "$A/d/f"
ms=$(wait_for "chmod on A" '[ "$(stat -c %a "$B/d/f")" = 600 ]')
note "chmod on A seen on B (attr_timeout=30) after ${ms} ms"
echo more >>"$A/d/f"
ms=$(wait_for "append on A" '[ "$(cat "$B/d/f")" = "$(printf "x\nmore")" ]')
note "append on A read on B through an open file's cache after ${ms} ms"
setfattr -n user.tag -v blue "$A/d/f"
ms=$(wait_for "setxattr on A" '[ "$(getfattr --only-values -n user.tag "$B/d/f" 2>/dev/null)" = blue ]')
mv "$A/d/f" "$A/d/g"
ms=$(wait_for "rename on A" '[ ! -e "$B/d/f" ] && [ -e "$B/d/g" ]')
note "rename on A seen on B (entry_timeout=30) after ${ms} ms"
rm "$A/d/g"
ms=$(wait_for "unlink on A" '[ ! -e "$B/d/g" ]')
note "unlink on A seen on B after ${ms} ms"
ls "$B/d" >/dev/null
rmdir "$A/d"
ms=$(wait_for "rmdir on A" '[ ! -e "$B/d" ]')

# -------------------------------------------------------- strict
echo one >"$A/s1"
stat "$S/s1" >/dev/null || fail "strict mount does not see s1"
chmod 640 "$A/s1"
[ "$(stat -c %a "$S/s1")" = 640 ] || fail "strict mount: chmod on A not seen at once"
mv "$A/s1" "$A/s2"
[ ! -e "$S/s1" ] && [ -e "$S/s2" ] || fail "strict mount: rename on A not seen at once"
echo two >>"$A/s2"
[ "$(cat "$S/s2")" = $'one\ntwo' ] || fail "strict mount: append on A not seen at once"

# -------------------------------------------------------- locks
# flock: a holder on A keeps B out until it lets go
echo lockme >"$A/lk"
flock -x "$A/lk" -c "touch '$E2E_TMP/held'; sleep 3" &
holder=$!
E2E_PIDS+=("$holder")
wait_for "flock taken on A" '[ -e "$E2E_TMP/held" ]' >/dev/null
if flock -n -x "$B/lk" true; then fail "flock -x on B succeeded while A holds it"; fi
if flock -n -s "$B/lk" true; then fail "flock -s on B succeeded while A holds it exclusively"; fi
t0=$(now_ms)
flock -x "$B/lk" true || fail "a waiting flock -x on B failed"
waited=$(($(now_ms) - t0))
[ "$waited" -ge 1000 ] || fail "a waiting flock on B returned after ${waited} ms, while A held it ~3 s"
note "flock on B waited ${waited} ms for A's holder"
wait "$holder" || true
flock -n -x "$B/lk" true || fail "flock -x on B fails after A let go"
# shared locks share
flock -s "$A/lk" -c "flock -n -s '$B/lk' true" || fail "two flock -s on A and B conflict"

# many waiters: more processes wait on B than B has worker threads (16);
# B goes on answering meanwhile, a waiter killed by a signal leaves at once,
# and every other waiter gets the lock in turn once A lets go
flock -x "$A/lk" -c "touch '$E2E_TMP/held2'; sleep 4" &
holder=$!
E2E_PIDS+=("$holder")
wait_for "flock taken on A again" '[ -e "$E2E_TMP/held2" ]' >/dev/null
waiters=()
for i in $(seq 1 24); do
    timeout 60 flock -x "$B/lk" -c "echo $i >>'$E2E_TMP/turns'" &
    waiters+=($!)
done
E2E_PIDS+=("${waiters[@]}")
sleep 0.5
t0=$(now_ms)
timeout 5 ls "$B" >/dev/null || fail "B stops answering while 24 processes wait for a lock on it"
timeout 5 stat "$B/lk" >/dev/null || fail "stat on B hangs while 24 processes wait for a lock on it"
note "ls and stat on B with 24 lock waiters: $(($(now_ms) - t0)) ms"
t0=$(now_ms)
rc=0
timeout -s TERM 1 flock -x "$B/lk" true || rc=$?
[ "$rc" = 124 ] || fail "a waiting flock killed by SIGTERM ended with $rc, not 124"
[ $(($(now_ms) - t0)) -lt 3000 ] || fail "a waiting flock took $(($(now_ms) - t0)) ms to leave on SIGTERM"
for p in "${waiters[@]}"; do
    wait "$p" || fail "a waiting flock on B ended with $? (24 waiters)"
done
wait "$holder" || true
[ "$(wc -l <"$E2E_TMP/turns")" = 24 ] || fail "$(wc -l <"$E2E_TMP/turns") of 24 waiters ran under the lock"
flock -n -x "$B/lk" true || fail "flock -x on B fails after 24 waiters let go"

# fcntl byte ranges, F_GETLK, close and kill -9 releasing, F_SETLKW interrupted
python3 - "$A/lk" "$B/lk" "$E2E_TMP" <<'PYEOF' || fail "fcntl locks across mounts (above)"
import fcntl, os, signal, struct, subprocess, sys, time
a, b, tmp = sys.argv[1:4]
fa = os.open(a, os.O_RDWR)
fb = os.open(b, os.O_RDWR)
def lock(fd, typ, start, length, wait=False):
    fcntl.lockf(fd, typ | (0 if wait or typ == fcntl.LOCK_UN else fcntl.LOCK_NB), length, start)
def refused(fd, typ, start, length):
    try:
        lock(fd, typ, start, length)
    except OSError as e:
        return True
    return False
def getlk(fd, typ, start, length):
    arg = struct.pack("hhqqi", typ, os.SEEK_SET, start, length, 0)
    r = fcntl.fcntl(fd, fcntl.F_GETLK, arg)
    return struct.unpack("hhqqi", r)[:4]
def fork_lock(path, typ, start, length, hold):
    # a process of its own: locks belong to processes, this one holds fa/fb
    return subprocess.Popen([sys.executable, "-c",
        "import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_RDWR); "
        "fcntl.lockf(fd, int(sys.argv[2]) | fcntl.LOCK_NB, int(sys.argv[4]), int(sys.argv[3])); "
        "open(sys.argv[6],'w').close(); time.sleep(float(sys.argv[5]))",
        path, str(typ), str(start), str(length), str(hold), tmp + "/ready"], stderr=subprocess.DEVNULL)
def ready():
    for _ in range(200):
        if os.path.exists(tmp + "/ready"):
            os.unlink(tmp + "/ready")
            return
        time.sleep(0.05)
    sys.exit("the locking child did not start")
fail = []
# a child on mount A holds bytes 0..99 for writing
p = fork_lock(a, fcntl.LOCK_EX, 0, 100, 30)
ready()
if not refused(fb, fcntl.LOCK_EX, 50, 10): fail.append("B wrote-locked bytes 50..59 held by A")
if not refused(fb, fcntl.LOCK_SH, 0, 1): fail.append("B read-locked byte 0 held for writing by A")
if refused(fb, fcntl.LOCK_EX, 100, 100): fail.append("B could not lock bytes 100..199, which A does not hold")
t, w, st, ln = getlk(fb, fcntl.F_WRLCK, 0, 10)
if (t, st, ln) != (fcntl.F_WRLCK, 0, 100): fail.append("F_GETLK on B says %r, expected a write lock 0..99" % ((t, st, ln),))
t, w, st, ln = getlk(fb, fcntl.F_WRLCK, 300, 10)
if t != fcntl.F_UNLCK: fail.append("F_GETLK on B for free bytes says %r" % t)
# F_SETLKW waits, and a signal interrupts it, taking nothing
class Alarm(Exception): pass
def on_alarm(*_): raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
signal.alarm(1)
t0 = time.time()
try:
    lock(fb, fcntl.LOCK_EX, 0, 100, wait=True)
    fail.append("F_SETLKW on B returned while A holds the range")
except Alarm:
    pass
signal.alarm(0)
if time.time() - t0 < 0.8: fail.append("F_SETLKW on B returned early")
# kill -9 of the holder: its locks go with its descriptors
p.kill(); p.wait()
deadline = time.time() + 10
while refused(fb, fcntl.LOCK_EX, 0, 100):
    if time.time() > deadline:
        fail.append("A's lock outlived its killed holder"); break
    time.sleep(0.1)
lock(fb, fcntl.LOCK_UN, 0, 0)
# ranges split: B holds 0..999, lets go of 400..599; A may take 450..499 only
lock(fb, fcntl.LOCK_EX, 0, 1000)
lock(fb, fcntl.LOCK_UN, 400, 200)
p = fork_lock(a, fcntl.LOCK_EX, 450, 50, 0.2); rc = p.wait()
if rc != 0: fail.append("A could not lock 450..499, which B let go")
p = fork_lock(a, fcntl.LOCK_EX, 350, 10, 0.2); rc = p.wait()
if rc == 0: fail.append("A locked 350..359, which B still holds")
# a close of any descriptor drops the process's locks on the file
fb2 = os.open(b, os.O_RDONLY)
os.close(fb2)
p = fork_lock(a, fcntl.LOCK_EX, 0, 100, 0.2); rc = p.wait()
if rc != 0: fail.append("B's locks outlived the close of one of its descriptors")
print("\n".join(fail), file=sys.stderr)
sys.exit(1 if fail else 0)
PYEOF

# -------------------------------------------------------- options
must_fail "$METAFS" mount "$VOL" "$E2E_TMP/x" -o attr_timeout=soon
last_err_matches "attr_timeout=soon.*seconds"
must_fail "$METAFS" mount "$VOL" "$E2E_TMP/x" -o entry_timeout=-1
last_err_matches "entry_timeout"

unmount_volume "$N"
unmount_volume "$S"
unmount_volume "$B"
unmount_volume "$A"
must "$METAFS" fsck "$VOL"
echo "PASS [$E2E_NAME]"
