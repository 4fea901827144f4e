#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# SIGTERM to the daemon, with one file closed and another still open with
# unflushed writes: the daemon exits cleanly within 10 s, the mount goes
# away, and after a remount the closed file is intact and the volume is
# consistent. What happens to the open file's data is recorded. Also:
# fusermount3 -u on an idle mount ends the daemon within 10 s.
source "$(dirname "$0")/lib.sh"
e2e_init python3 sha256sum cmp
setup_mounted_volume

# wait_gone PID...: true once none of them runs, within 10 s.
wait_gone() {
    local i p alive
    for i in $(seq 1 100); do
        alive=""
        for p in "$@"; do
            kill -0 "$p" 2>/dev/null && alive=1
        done
        [ -n "$alive" ] || return 0
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- SIGTERM
head -c 1500000 /dev/urandom >"$E2E_TMP/closed.want" # chunked
head -c 3000 /dev/urandom >"$E2E_TMP/small.want"     # inline
head -c 700000 /dev/urandom >"$E2E_TMP/open.want"
cp "$E2E_TMP/closed.want" "$MNT/closed"
cp "$E2E_TMP/small.want" "$MNT/small"
mkdir "$MNT/dir"
echo "in a directory" >"$MNT/dir/file"

# A writer that keeps its file open: writes, reports, waits for the word to
# go on, writes again and closes, printing what each step returned.
python3 - "$MNT/open" "$E2E_TMP/open.want" "$E2E_TMP/writer.ready" "$E2E_TMP/writer.go" \
    >"$E2E_TMP/writer.log" 2>&1 <<'PY' &
import os, sys, time
path, want, ready, go = sys.argv[1:5]
data = open(want, "rb").read()
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
n = os.write(fd, data)
print("first write: %d bytes" % n, flush=True)
open(ready, "w").close()
for _ in range(300):
    if os.path.exists(go):
        break
    time.sleep(0.1)
for what, fn in (("write after SIGTERM", lambda: os.write(fd, b"more")),
                 ("fsync after SIGTERM", lambda: os.fsync(fd)),
                 ("close after SIGTERM", lambda: os.close(fd))):
    try:
        r = fn()
        print("%s: ok%s" % (what, "" if r is None else " (%r)" % r), flush=True)
    except OSError as e:
        print("%s: %s" % (what, e.strerror), flush=True)
PY
writer=$!
track_pid "$writer"
for i in $(seq 1 100); do
    [ -e "$E2E_TMP/writer.ready" ] && break
    kill -0 "$writer" 2>/dev/null || fail "the writer ended early: $(cat "$E2E_TMP/writer.log")"
    sleep 0.1
done
[ -e "$E2E_TMP/writer.ready" ] || fail "the writer did not get its first write done in 10 s"

pids=$(daemon_pids "$MNT")
[ -n "$pids" ] || fail "no daemon found for $MNT"
t0=$(now_ms)
kill -TERM $pids
wait_gone $pids || fail "the daemon ($pids) still runs 10 s after SIGTERM"
note "the daemon exited $(($(now_ms) - t0)) ms after SIGTERM"
for i in $(seq 1 50); do
    is_mounted "$MNT" || break
    sleep 0.1
done
is_mounted "$MNT" && fail "$MNT is still in /proc/mounts after the daemon exited on SIGTERM"
E2E_MOUNTS=()
grep -q "stopped serving" "$VOL/metafs.log" ||
    fail "the daemon did not log a clean stop after SIGTERM: $(tail -n 5 "$VOL/metafs.log")"
if grep -iE ' (error|fatal|warn[a-z]*):' "$VOL/metafs.log" >"$E2E_TMP/log.err"; then
    note "the daemon logged at SIGTERM:"
    cat "$E2E_TMP/log.err" >&2
fi

touch "$E2E_TMP/writer.go"
wait "$writer" || fail "the writer failed: $(cat "$E2E_TMP/writer.log")"
while IFS= read -r l; do note "open writer: $l"; done <"$E2E_TMP/writer.log"

mount_volume "$VOL" "$MNT"
cmp "$E2E_TMP/closed.want" "$MNT/closed" || fail "the closed chunked file is not intact after SIGTERM and remount"
cmp "$E2E_TMP/small.want" "$MNT/small" || fail "the closed small file is not intact after SIGTERM and remount"
[ "$(cat "$MNT/dir/file")" = "in a directory" ] || fail "dir/file is not intact after SIGTERM and remount"
[ -e "$MNT/open" ] || fail "the file created by the open writer is missing after remount"
size=$(stat -c %s "$MNT/open")
if cmp -s "$E2E_TMP/open.want" "$MNT/open"; then
    note "the still-open file: all $size bytes written before SIGTERM are there"
elif [ "$size" -eq 0 ]; then
    note "the still-open file: empty after remount (its buffered bytes were not committed)"
else
    # whatever is there must be a prefix of what was written, not garbage
    cmp -n "$size" "$E2E_TMP/open.want" "$MNT/open" >/dev/null ||
        fail "the still-open file holds $size bytes that are not what was written"
    note "the still-open file: $size of 700000 bytes, a correct prefix"
fi
ls -la "$MNT" >/dev/null || fail "cannot list the volume after remount"
echo "after" >"$MNT/after" || fail "cannot write after remount"
[ "$(cat "$MNT/after")" = after ] || fail "a file written after remount reads back wrong"
unmount_volume "$MNT"
if "$METAFS" fsck --help >/dev/null 2>&1; then
    "$METAFS" fsck "$VOL" >"$E2E_TMP/fsck.out" 2>&1 ||
        fail "metafs fsck after SIGTERM exited $?: $(shorten "$(cat "$E2E_TMP/fsck.out")")"
    note "metafs fsck after SIGTERM: exit 0"
else
    note "metafs fsck is not available in this build; not run"
fi

# ---------------------------------------------------------------- idle fusermount3 -u
mount_volume "$VOL" "$MNT"
echo "idle" >"$MNT/idle"
sleep 1
pids=$(daemon_pids "$MNT")
[ -n "$pids" ] || fail "no daemon found for $MNT"
t0=$(now_ms)
must fusermount3 -u "$MNT"
wait_gone $pids || fail "the daemon ($pids) still runs 10 s after fusermount3 -u"
note "the daemon exited $(($(now_ms) - t0)) ms after fusermount3 -u"
is_mounted "$MNT" && fail "$MNT is still mounted after fusermount3 -u"
E2E_MOUNTS=()
mount_volume "$VOL" "$MNT"
[ "$(cat "$MNT/idle")" = idle ] || fail "the file written before fusermount3 -u is not intact"
cmp "$E2E_TMP/closed.want" "$MNT/closed" || fail "the closed file changed across the second remount"
unmount_volume "$MNT"
echo "ok: SIGTERM and fusermount3 -u end the daemon cleanly; closed files survive"
