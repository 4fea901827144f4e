#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A full disk under the volume: the write that does not fit fails with
# ENOSPC (not EIO, not a crash), the daemon keeps serving, earlier files stay
# intact, deleting files (or, failing that, freeing space beside the volume)
# makes the volume writable again, and after a remount the early files are
# intact and fsck (when built) finds no fault.
#
# metafs stops growing while the disk under the volume has less free than its
# reserve (at least 192 MiB), so the tmpfs is sized to leave some 200 MiB
# above that reserve, and RESERVE_MIB more in a file beside the volume: enough
# to lift the free space above the reserve again once that file is removed.
source "$(dirname "$0")/lib.sh"
e2e_init python3 sha256sum mount umount df

SMALL=$E2E_TMP/small
mkdir -p "$SMALL"
cleanup_small() {
    cd /
    local m
    for m in "${E2E_MOUNTS[@]}"; do
        unmount_volume "$m" quiet
    done
    E2E_MOUNTS=()
    if is_mounted "$SMALL"; then
        umount "$SMALL" 2>/dev/null || umount -l "$SMALL"
    fi
}
trap 'cleanup_small; e2e_cleanup' EXIT
TMPFS_MIB=576
RESERVE_MIB=160
must mount -t tmpfs -o size=${TMPFS_MIB}m tmpfs "$SMALL"

VOL=$SMALL/vol
MNT=$E2E_TMP/mnt
new_volume "$VOL"
# Space held back beside the volume, freed if deleting files inside the
# volume does not give enough back.
must dd if=/dev/zero of="$SMALL/reserve" bs=1M count=$RESERVE_MIB status=none
mount_volume "$VOL" "$MNT"
pids=$(daemon_pids "$MNT")
[ -n "$pids" ] || fail "no daemon found for $MNT"
free_kib() {
    df -k --output=avail "$SMALL" | tail -n 1 | tr -d ' '
}
note "tmpfs of $TMPFS_MIB MiB: $(free_kib) KiB free after format, mount and a $RESERVE_MIB MiB file beside the volume"

PROBLEMS=()
problem() {
    note "PROBLEM: $*"
    PROBLEMS+=("$*")
}
daemon_alive() {
    local p
    for p in $pids; do
        kill -0 "$p" 2>/dev/null || return 1
    done
    is_mounted "$MNT" && stat "$MNT" >/dev/null 2>&1
}
early_intact() {
    (cd "$MNT/early" && sha256sum -c --quiet "$E2E_TMP/early.sums") >"$E2E_TMP/check.out" 2>&1
}

# Early files, small (inline) and chunked.
mkdir "$MNT/early"
for size in 10 4000 65536 300000 1048576 2500000; do
    head -c "$size" /dev/urandom >"$MNT/early/f$size"
done
echo "a line of text" >"$MNT/early/text"
(cd "$MNT/early" && sha256sum -- *) >"$E2E_TMP/early.sums"

# fill.py FILE MIB: writes MIB MiB of random bytes, 1 MiB a write, then
# closes; prints "ok BYTES" or "STAGE ERRNO-NAME BYTES-WRITTEN MESSAGE".
cat >"$E2E_TMP/fill.py" <<'PY'
import errno, os, sys
path, mib = sys.argv[1], int(sys.argv[2])
try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
except OSError as e:
    print("open", errno.errorcode.get(e.errno, e.errno), 0, e.strerror)
    sys.exit(0)
done = 0
stage = "write"
try:
    for _ in range(mib):
        done += os.write(fd, os.urandom(1 << 20))
    stage = "close"
    os.close(fd)
    print("ok", done)
except OSError as e:
    print(stage, errno.errorcode.get(e.errno, e.errno), done, e.strerror)
    if stage == "write":
        try:
            os.close(fd)
        except OSError as e2:
            print("# and close: %s" % e2.strerror, file=sys.stderr)
PY
fill() {
    timeout 30 python3 "$E2E_TMP/fill.py" "$@" || echo "crash $? 0 python3 failed or hung"
}

# Fill with 8 MiB files until one fails, then with 1 MiB files until one
# fails too: the disk is then as full as metafs lets it get.
mkdir "$MNT/fill"
t0=$(now_ms)
fill_until_error() { # MIB MAX: sets n (files written + 1) and result
    local mib=$1 max=$2 i
    result=""
    n=0
    for i in $(seq 1 "$max"); do
        n=$i
        result=$(fill "$MNT/fill/$mib-$i" "$mib")
        [ "${result%% *}" = ok ] || return 0
    done
    n=$((max + 1))
}
fill_until_error 8 60
big_files=$((n - 1)) big_result=$result
note "filling: $big_files files of 8 MiB fitted; file $n: $big_result"
[ "$n" -le 60 ] || fail "60 files of 8 MiB fitted on a $TMPFS_MIB MiB tmpfs: no error at all"
last_failed=$MNT/fill/8-$n
fill_until_error 1 100
note "then $((n - 1)) files of 1 MiB fitted; file $n: $result; $(($(now_ms) - t0)) ms in all"
if [ "$n" -le 100 ]; then
    last_failed=$MNT/fill/1-$n
else
    note "100 files of 1 MiB fitted after the 8 MiB file failed: looking at that first failure"
    result=$big_result
fi
read -r stage err _ <<<"$result"
case $stage in
open | write | close) ;;
*) problem "the filling write ended as: $result" ;;
esac
if [ "$err" = ENOSPC ]; then
    note "the failing $stage reported ENOSPC (No space left on device)"
else
    problem "the failing $stage reported ${err:-nothing}, expected ENOSPC: $result"
fi
note "tmpfs now: $(free_kib) KiB free"

# The daemon is alive and still serves reads.
if daemon_alive; then
    note "the daemon is alive and the mount answers"
else
    fail "the daemon died or the mount stopped answering after ENOSPC (log: $(tail -n 5 "$VOL/metafs.log" 2>/dev/null))"
fi
if early_intact; then
    note "the early files are intact while the disk is full"
else
    problem "the early files are not intact while the disk is full: $(shorten "$(cat "$E2E_TMP/check.out")")"
fi
ls "$MNT/fill" >/dev/null || problem "cannot list the fill directory while full"
partial=$(stat -c %s "$last_failed" 2>/dev/null) || partial="(missing)"
note "the file whose write failed has size $partial"
# A small file while full: record what happens.
if { echo "small" >"$MNT/while-full"; } 2>"$E2E_TMP/small.err"; then
    note "a 6-byte file could still be written while full"
else
    note "a 6-byte file while full: $(cat "$E2E_TMP/small.err")"
    grep -q 'No space left on device' "$E2E_TMP/small.err" ||
        problem "a small write while full failed with something other than ENOSPC: $(cat "$E2E_TMP/small.err")"
fi

# Free space: first by deleting the fill files through the mount.
if rm -rf "$MNT/fill" 2>"$E2E_TMP/rm.err"; then
    note "deleting the fill files while full: worked; $(free_kib) KiB free"
else
    problem "deleting the fill files while full failed: $(shorten "$(cat "$E2E_TMP/rm.err")")"
fi
daemon_alive || fail "the daemon died while files were deleted on a full disk"
# the space of deleted files comes back as the store compacts: try for 15 s
for i in $(seq 1 15); do
    result=$(fill "$MNT/after-free" 2)
    [ "${result%% *}" != ok ] || break
    sleep 1
done
note "a 2 MiB file after deleting the fill files: $result ($(free_kib) KiB free)"
if [ "${result%% *}" != ok ]; then
    problem "deleting the fill files does not make room for a 2 MiB file (15 s later): $result"
    # then beside the volume
    rm -f "$SMALL/reserve"
    note "freed the $RESERVE_MIB MiB file beside the volume; $(free_kib) KiB free"
    if [ -e "$MNT/fill" ]; then
        if rm -rf "$MNT/fill" 2>"$E2E_TMP/rm.err"; then
            note "deleting the fill files after freeing space beside the volume: worked"
        else
            problem "deleting the fill files fails even with $(free_kib) KiB free: $(shorten "$(head -n 1 "$E2E_TMP/rm.err")")"
        fi
    fi
    result=$(fill "$MNT/after-free" 2)
    note "a 2 MiB file after freeing space beside the volume: $result"
    if [ "${result%% *}" != ok ]; then
        problem "the live mount stays unwritable after space was freed beside the volume ($(free_kib) KiB free): $result"
        daemon_alive || fail "the daemon died after space was freed"
        note "unmounting and mounting again to recover"
        unmount_volume "$MNT"
        mount_volume "$VOL" "$MNT"
        pids=$(daemon_pids "$MNT")
        if [ -e "$MNT/fill" ]; then
            rm -rf "$MNT/fill" 2>"$E2E_TMP/rm.err" ||
                fail "deleting the fill files fails after a remount with $(free_kib) KiB free: $(shorten "$(cat "$E2E_TMP/rm.err")")"
        fi
        result=$(fill "$MNT/after-free" 2)
        note "a 2 MiB file after the remount: $result"
        [ "${result%% *}" = ok ] || fail "the volume is not writable after freeing space and a remount: $result"
    fi
fi
daemon_alive || fail "the daemon died after space was freed"
[ "$(stat -c %s "$MNT/after-free")" = 2097152 ] ||
    problem "the 2 MiB file written after freeing space has size $(stat -c %s "$MNT/after-free")"
(cd "$MNT" && sha256sum after-free) >"$E2E_TMP/after.sums"
{ echo "written after" >"$MNT/after-small"; } 2>"$E2E_TMP/w.err" ||
    problem "a small file cannot be written after space was freed: $(cat "$E2E_TMP/w.err")"
early_intact || problem "the early files are not intact after space was freed: $(shorten "$(cat "$E2E_TMP/check.out")")"

# Remount: everything is intact; fsck when it exists.
unmount_volume "$MNT"
mount_volume "$VOL" "$MNT"
if early_intact; then
    note "after remount the early files are intact"
else
    problem "after remount the early files are not intact: $(shorten "$(cat "$E2E_TMP/check.out")")"
fi
(cd "$MNT" && sha256sum -c --quiet "$E2E_TMP/after.sums") >/dev/null 2>&1 ||
    problem "after remount the file written after freeing space is not intact"
if [ -e "$MNT/after-small" ] && [ "$(cat "$MNT/after-small")" != "written after" ]; then
    problem "after remount the small file written after freeing space reads '$(cat "$MNT/after-small")'"
fi
result=$(fill "$MNT/after-remount" 2)
[ "${result%% *}" = ok ] || problem "a 2 MiB file cannot be written after remount: $result"
unmount_volume "$MNT"
if "$METAFS" fsck --help >/dev/null 2>&1; then
    if "$METAFS" fsck "$VOL" >"$E2E_TMP/fsck.out" 2>&1; then
        note "metafs fsck: exit 0 ($(tail -n 1 "$E2E_TMP/fsck.out"))"
    else
        problem "metafs fsck $VOL exited $?: $(shorten "$(cat "$E2E_TMP/fsck.out")")"
    fi
else
    note "metafs fsck is not available in this build; not run"
fi
if grep -iE 'error|fatal|abort' "$VOL/metafs.log" >"$E2E_TMP/log.err"; then
    note "the daemon logged $(wc -l <"$E2E_TMP/log.err") error line(s), the last ones:"
    tail -n 5 "$E2E_TMP/log.err" >&2
fi

if [ "${#PROBLEMS[@]}" -gt 0 ]; then
    fail "${#PROBLEMS[@]} problem(s) with a full disk:"$'\n'"$(printf '  %s\n' "${PROBLEMS[@]}")"
fi
echo "ok: ENOSPC on a full disk is reported, survived and recovered from"
