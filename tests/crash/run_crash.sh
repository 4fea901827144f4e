# SPDX-License-Identifier: Apache-2.0
# Runs the crash-durability harness against $METAFS.
#   bash tests/crash/run_crash.sh [kill|powerloss] [ROUNDS]
# Exit codes: the harness's (0 pass, 1 fail), 77 skip (not root, no /dev/fuse).
set -euo pipefail

mode=${1:-kill}
case $mode in
kill | powerloss) ;;
*)
    echo "usage: $0 [kill|powerloss] [ROUNDS]" >&2
    exit 2
    ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
METAFS=${METAFS:-$here/../../build/tools/metafs}

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP [crash $mode]: must run as root" >&2
    exit 77
fi
if [ ! -c /dev/fuse ]; then
    echo "SKIP [crash $mode]: /dev/fuse is missing" >&2
    exit 77
fi
if ! command -v fusermount3 >/dev/null; then
    echo "SKIP [crash $mode]: fusermount3 is missing" >&2
    exit 77
fi
if [ ! -x "$METAFS" ]; then
    echo "FAIL [crash $mode]: metafs binary not found at $METAFS (set METAFS)" >&2
    exit 1
fi

args=(--mode "$mode" --metafs "$METAFS")
if [ -n "${2:-}" ]; then
    args+=(--rounds "$2")
fi
if [ -n "${CRASH_SEED:-}" ]; then
    args+=(--seed "$CRASH_SEED")
fi
status=0
python3 "$here/crash_harness.py" "${args[@]}" || status=$?
exit "$status"
