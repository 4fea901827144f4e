#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what is missing, builds, and runs the whole test suite twice: in
# the normal build, and in an ASan/UBSan build (all but the crash rounds,
# which test the store's recovery rather than our memory use, and the
# benchmark harness, whose figures mean nothing under a sanitizer). Exits
# non-zero on any failure.
# The end-to-end tests mount real FUSE filesystems: run as root.
set -uo pipefail
cd "$(dirname "$0")/.."

# the benchmark harness's quick mode is part of the suite, and needs its tools;
# the MySQL store's tests start their own MariaDB (and Galera) servers
tools/install-deps.sh fio fsmark gnuplot-nox bindfs fuse-overlayfs mariadb-server mariadb-client galera-4 rsync || exit 1
passed=0
failed=0
skipped=0
status=0

run_suite() { # DIR LABEL MESON-TEST-ARGS [meson options]
	local dir=$1 label=$2 test_args=$3
	shift 3
	echo "== building $label ($dir)"
	if ! tools/build.sh "$dir" "$@"; then
		echo "== build of $label failed"
		failed=$((failed + 1))
		status=1
		return
	fi
	echo "== testing $label"
	local log
	log=$(mktemp)
	# shellcheck disable=SC2086
	meson test -C "$dir" --print-errorlogs --num-processes 1 $test_args 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	local ok fail skip
	ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log" | tail -1)
	fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$log" | tail -1)
	skip=$(sed -n 's/^Skipped: *\([0-9]*\).*/\1/p' "$log" | tail -1)
	rm -f "$log"
	passed=$((passed + ${ok:-0}))
	failed=$((failed + ${fail:-0}))
	skipped=$((skipped + ${skip:-0}))
	if [ "$rc" -ne 0 ]; then
		status=1
		[ "${fail:-0}" -gt 0 ] || failed=$((failed + 1))
	fi
}

run_suite build "the normal build" ""

# Daemons have no terminal: sanitizer reports go to files, and any report
# fails the run. Unit tests check for leaks; daemons do not (libfuse and
# RocksDB keep allocations for the life of the process).
san_logs=$(mktemp -d /tmp/metafs-sanitizer.XXXXXX)
ASAN_OPTIONS="abort_on_error=1:log_path=$san_logs/asan" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$san_logs/ubsan" \
	run_suite build-asan "the sanitizer build" "--no-suite crash --no-suite bench" -Db_sanitize=address,undefined -Db_lundef=false
if compgen -G "$san_logs/*" >/dev/null; then
	echo "== sanitizer reports:"
	cat "$san_logs"/*
	failed=$((failed + 1))
	status=1
fi
rm -rf "$san_logs"

echo "$passed passed, $failed failed, $skipped skipped"
exit $status
