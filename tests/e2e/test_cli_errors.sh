#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The command line refuses what it cannot do with a non-zero exit, a
# one-line message on stderr, and no mount or daemon left behind.
source "$(dirname "$0")/lib.sh"
e2e_init
setup_mounted_volume
echo "kept" >"$MNT/precious"

# expect_error WHAT PATTERN MOUNTPOINT -- COMMAND...: the command fails,
# prints exactly one line on stderr matching PATTERN (ERE, any case), and
# MOUNTPOINT (if not empty) is not mounted afterwards.
expect_error() {
    local what=$1 pattern=$2 mnt=$3
    shift 4
    local rc=0
    "$@" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
    [ "$rc" -ne 0 ] || fail "$what: '$(shorten "$*")' exited 0"
    local lines
    lines=$(wc -l <"$E2E_TMP/err")
    [ "$lines" -eq 1 ] ||
        fail "$what: expected one line on stderr, got $lines:"$'\n'"$(head -n 10 "$E2E_TMP/err")"
    grep -Eiq -- "$pattern" "$E2E_TMP/err" ||
        fail "$what: the message does not match /$pattern/: $(cat "$E2E_TMP/err")"
    if [ -n "$mnt" ]; then
        is_mounted "$mnt" && fail "$what: $mnt is mounted after the failed command"
        [ -z "$(daemon_pids "$mnt")" ] || fail "$what: a process for $mnt is still running"
    fi
    note "$what: exit $rc, \"$(cat "$E2E_TMP/err")\""
}
re_escape() {
    printf '%s' "$1" | sed 's/[][\.*^$+?(){}|/]/\\&/g'
}

# format refuses a directory that already holds a volume (mounted or not)
# and leaves that volume alone.
expect_error "format of a mounted volume" "$(re_escape "$VOL")" "" -- \
    "$METAFS" format "$VOL"
unmount_volume "$MNT"
expect_error "format of an existing volume" "$(re_escape "$VOL")" "" -- \
    "$METAFS" format "$VOL"
expect_error "format of an existing volume with options" "$(re_escape "$VOL")" "" -- \
    "$METAFS" format "$VOL" --inline-threshold 4096
mount_volume "$VOL" "$MNT"
[ "$(cat "$MNT/precious")" = kept ] || fail "a refused format changed the volume"
unmount_volume "$MNT"

# mount of a volume that does not exist: the message names the path, and
# no volume is made there.
MISSING=$E2E_TMP/no-such-volume
M2=$E2E_TMP/m2
mkdir -p "$M2"
expect_error "mount of a missing volume" "$(re_escape "$MISSING")" "$M2" -- \
    "$METAFS" mount "$MISSING" "$M2"
[ ! -e "$MISSING" ] || fail "mount of a missing volume created $MISSING"
mkdir "$E2E_TMP/empty-dir"
expect_error "mount of an empty directory as volume" "$(re_escape "$E2E_TMP/empty-dir")" "$M2" -- \
    "$METAFS" mount "$E2E_TMP/empty-dir" "$M2"

# The same volume on a second mount point while mounted: busy.
mount_volume "$VOL" "$MNT"
expect_error "second mount of a mounted volume" 'busy|in use|already mounted|locked' "$M2" -- \
    "$METAFS" mount "$VOL" "$M2"
[ "$(cat "$MNT/precious")" = kept ] || fail "the first mount stopped working after a refused second mount"
[ "$(grep -c "^$VOL " /proc/mounts)" -eq 1 ] || fail "$VOL is mounted $(grep -c "^$VOL " /proc/mounts) times"

# The same mount point twice.
unmount_volume "$MNT"
new_volume "$E2E_TMP/vol2"
mount_volume "$VOL" "$MNT"
rc=0
"$METAFS" mount "$E2E_TMP/vol2" "$MNT" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
[ "$rc" -ne 0 ] || { E2E_MOUNTS+=("$MNT"); fail "mount over an existing metafs mount exited 0"; }
[ "$(cat "$MNT/precious")" = kept ] || fail "a refused mount over $MNT hid the first volume"
unmount_volume "$MNT"

# Mount points that are not empty directories.
mkdir -p "$E2E_TMP/full"
echo x >"$E2E_TMP/full/file"
expect_error "mount on a non-empty directory" "$(re_escape "$E2E_TMP/full")" "$E2E_TMP/full" -- \
    "$METAFS" mount "$VOL" "$E2E_TMP/full"
[ "$(cat "$E2E_TMP/full/file")" = x ] || fail "the file in the non-empty directory is gone"
echo x >"$E2E_TMP/plain-file"
expect_error "mount on a regular file" "$(re_escape "$E2E_TMP/plain-file")" "$E2E_TMP/plain-file" -- \
    "$METAFS" mount "$VOL" "$E2E_TMP/plain-file"
expect_error "mount on a missing path" "$(re_escape "$E2E_TMP/nowhere")" "$E2E_TMP/nowhere" -- \
    "$METAFS" mount "$VOL" "$E2E_TMP/nowhere"

# Usage errors.
expect_error "mount without a mount point" '.' "" -- "$METAFS" mount "$VOL"
expect_error "an unknown command" '.' "" -- "$METAFS" no-such-command
expect_error "changelog of a missing volume" "$(re_escape "$MISSING")" "" -- \
    "$METAFS" changelog "$MISSING" --json
expect_error "changelog with a bad --from" '.' "" -- "$METAFS" changelog "$VOL" --from abc

# After all of that, nothing of this test is mounted and the volume still mounts.
grep -F "$E2E_TMP" /proc/mounts && fail "mounts of this test are left in /proc/mounts"
mount_volume "$VOL" "$MNT"
[ "$(cat "$MNT/precious")" = kept ] || fail "the volume lost its file"
echo "PASS [$E2E_NAME]"
