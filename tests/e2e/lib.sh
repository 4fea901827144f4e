# SPDX-License-Identifier: Apache-2.0
# Shared helpers for the end-to-end tests: each test sources this file, calls
# e2e_init, then uses new_volume / mount_volume / unmount_volume.
# Exit codes: 0 pass, 1 fail, 77 skip (the Meson convention).

set -euo pipefail

METAFS=${METAFS:-/work/main/build/tools/metafs}
E2E_NAME=$(basename "$0" .sh)
E2E_TMP=""
E2E_MOUNTS=()
E2E_PIDS=()

fail() {
    echo "FAIL [$E2E_NAME]: $*" >&2
    exit 1
}

skip() {
    echo "SKIP [$E2E_NAME]: $*" >&2
    exit 77
}

note() {
    echo "# [$E2E_NAME] $*" >&2
}

# The text, cut to 300 characters, for messages.
shorten() {
    if [ "${#1}" -gt 300 ]; then
        printf '%s... (%d characters)' "${1:0:300}" "${#1}"
    else
        printf '%s' "$1"
    fi
}

# Runs "$@" and fails the test with its output when it does not succeed.
must() {
    local out
    if ! out=$("$@" 2>&1); then
        fail "command failed: $(shorten "$*")"$'\n'"$(shorten "$out")"
    fi
}

# Runs "$@" and fails the test when it succeeds. The command's stderr is
# left in $E2E_TMP/last.err so callers can check the message.
must_fail() {
    if "$@" >"$E2E_TMP/last.out" 2>"$E2E_TMP/last.err"; then
        fail "command succeeded but should have failed: $(shorten "$*")"
    fi
}

# Checks that the stderr of the last must_fail mentions the pattern (ERE, case-insensitive).
last_err_matches() {
    grep -Eiq -- "$1" "$E2E_TMP/last.err" ||
        fail "expected an error matching /$1/, got: $(shorten "$(cat "$E2E_TMP/last.err")")"
}

# Compares two files; on a difference shows the first lines of the diff.
same_files() {
    local what=$1 a=$2 b=$3
    if ! diff -u "$a" "$b" >"$E2E_TMP/same.diff" 2>&1; then
        fail "$what differ:"$'\n'"$(head -n 40 "$E2E_TMP/same.diff")"
    fi
}

# True when MNT is a mount point right now.
is_mounted() {
    awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts
}

# Pids of the processes whose command line names the mount point.
daemon_pids() {
    pgrep -f -- " $1( |\$)" || true
}

# Leaves the exit status alone, so it can be chained in another EXIT trap.
e2e_cleanup() {
    local i pid
    set +e
    cd / # a shell inside a mount keeps it busy
    for pid in "${E2E_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    for ((i = ${#E2E_MOUNTS[@]} - 1; i >= 0; i--)); do
        unmount_volume "${E2E_MOUNTS[i]}" quiet
    done
    if [ -n "$E2E_TMP" ] && [ -d "$E2E_TMP" ]; then
        if grep -qF " $E2E_TMP/" /proc/mounts; then
            echo "# [$E2E_NAME] leaving $E2E_TMP: something is still mounted under it" >&2
        elif [ -n "${E2E_KEEP:-}" ]; then
            echo "# [$E2E_NAME] kept $E2E_TMP" >&2
        else
            rm -rf "$E2E_TMP"
        fi
    fi
}

# Checks the prerequisites and makes the temp directory ($E2E_TMP).
e2e_init() {
    [ "$(id -u)" -eq 0 ] || skip "must run as root"
    [ -c /dev/fuse ] || skip "/dev/fuse is missing"
    command -v fusermount3 >/dev/null || skip "fusermount3 is missing"
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || skip "$tool is missing"
    done
    [ -x "$METAFS" ] || fail "metafs binary not found at $METAFS (set METAFS)"
    E2E_TMP=$(mktemp -d "/tmp/metafs-e2e-$E2E_NAME.XXXXXX")
    trap e2e_cleanup EXIT
    trap 'exit 130' INT TERM
}

# Formats a new volume at the given path (extra arguments go to format).
new_volume() {
    local vol=$1
    shift
    must "$METAFS" format "$vol" "$@"
}

# Mounts VOL on MNT (created if missing); extra arguments go to mount.
# Checks that the mount is ready when the command returns.
mount_volume() {
    local vol=$1 mnt=$2
    shift 2
    mkdir -p "$mnt"
    local err
    if ! err=$("$METAFS" mount "$vol" "$mnt" "$@" 2>&1); then
        fail "metafs mount $vol $mnt $* failed: $err"
    fi
    E2E_MOUNTS+=("$mnt")
    local line
    line=$(awk -v m="$mnt" '$2 == m { print $1, $3 }' /proc/mounts | tail -n 1)
    [ -n "$line" ] || fail "metafs mount returned 0 but $mnt is not in /proc/mounts"
    [ "$line" = "$vol fuse.metafs" ] ||
        fail "/proc/mounts shows '$line' for $mnt, expected '$vol fuse.metafs'"
    stat "$mnt" >/dev/null || fail "stat of the fresh mount $mnt failed"
}

# Unmounts MNT and waits until its daemon has exited, so the volume can be
# opened again at once. With a second argument, never fails (for cleanup).
unmount_volume() {
    local mnt=$1 quiet=${2:-} i pids
    pids=$(daemon_pids "$mnt")
    for i in $(seq 1 20); do
        is_mounted "$mnt" || break
        fusermount3 -u "$mnt" 2>/dev/null && break
        sleep 0.5
    done
    if is_mounted "$mnt"; then
        [ -n "$quiet" ] || note "unmount of $mnt kept failing; lazy unmount"
        fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
        [ -n "$quiet" ] || fail "could not unmount $mnt cleanly (busy?)"
    fi
    local pid
    for pid in $pids; do
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null && [ -z "$quiet" ]; then
            fail "daemon $pid of $mnt still runs 10 s after unmount"
        fi
    done
    local kept=() m
    for m in "${E2E_MOUNTS[@]}"; do
        [ "$m" = "$mnt" ] || kept+=("$m")
    done
    E2E_MOUNTS=("${kept[@]+"${kept[@]}"}")
}

# Formats $E2E_TMP/vol and mounts it on $E2E_TMP/mnt; sets VOL and MNT.
# Under tests/mysql/with_mariadb.sh (METAFS_TEST_MYSQL names a server), the
# volume is a new database on that server instead.
setup_mounted_volume() {
    VOL=$E2E_TMP/vol
    if [ -n "${METAFS_TEST_MYSQL:-}" ]; then
        VOL=$METAFS_TEST_MYSQL/e2e_$$_${RANDOM}
    fi
    MNT=$E2E_TMP/mnt
    new_volume "$VOL" "$@"
    mount_volume "$VOL" "$MNT"
}

# Milliseconds since the epoch, for printing how long a step took.
now_ms() {
    date +%s%3N
}

# Remembers a background process so cleanup stops it.
track_pid() {
    E2E_PIDS+=("$1")
}

# One sorted line per entry under DIR: relative path, type, mode, size
# (not for directories, whose size is up to each filesystem), link target,
# and optionally more find -printf fields.
tree_listing() {
    local dir=$1 extra=${2:-}
    (cd "$dir" && find . -mindepth 1 \( -type d -printf "%p %y %m - %l$extra\n" \) \
        -o -printf "%p %y %m %s %l$extra\n" | LC_ALL=C sort)
}
