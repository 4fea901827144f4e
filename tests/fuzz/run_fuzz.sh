#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets with clang and runs each over its seed corpus:
# 30 seconds (or 200000 inputs) each, or 10 minutes each with --long.
#   bash tests/fuzz/run_fuzz.sh [--long]
# Exit codes: 0 both ran clean, 1 a crash, leak or hang (the reproducer is
# kept and its path printed), 2 usage or build error, 77 skip (no clang or
# no libFuzzer).
set -euo pipefail

limits=(-runs=200000 -max_total_time=30)
case ${1:-} in
"") ;;
--long) limits=(-max_total_time=600) ;;
*)
    echo "usage: $0 [--long]" >&2
    exit 2
    ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
CLANG=${CLANG:-clang}

if ! command -v "$CLANG" >/dev/null; then
    echo "SKIP [fuzz]: $CLANG is not installed (apt-get install clang)" >&2
    exit 77
fi

work=$(mktemp -d /tmp/metafs-fuzz-XXXXXX)
keep=0
cleanup() {
    if [ "$keep" -eq 0 ]; then
        rm -rf "$work"
    fi
}
trap cleanup EXIT

flags=(-std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -g -O1
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
    -Wall -Wextra -Werror -Wno-unused-parameter -pthread)

printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' >"$work/probe.c"
if ! "$CLANG" -fsanitize=fuzzer "$work/probe.c" -o "$work/probe" 2>/dev/null; then
    echo "SKIP [fuzz]: $CLANG cannot link libFuzzer programs (-fsanitize=fuzzer)" >&2
    exit 77
fi

build() {
    local out=$1
    shift
    if ! "$CLANG" "${flags[@]}" "$@" -o "$work/$out"; then
        echo "FAIL [fuzz]: building $out" >&2
        exit 2
    fi
}
build fuzz_query -I"$src/indexer" "$here/fuzz_query.c" "$src/indexer/query.c"
build fuzz_changelog -I"$src/metadata" -I"$src/common" "$here/fuzz_changelog.c" \
    "$src/metadata/changelog.c" "$src/common/util.c" "$src/common/log.c"
build fuzz_search_request -I"$src/tools" -I"$src/indexer" -I"$src/metadata" -I"$src/common" \
    -I"$src/blockstore" "$here/fuzz_search_request.c" "$src/tools/search_wire.c"

failed=0
run() {
    local name=$1
    shift
    mkdir -p "$work/corpus_$name" "$work/artifacts_$name"
    echo "== $name" >&2
    if "$work/$name" "${limits[@]}" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$work/artifacts_$name/" "$work/corpus_$name" "$@" \
        >"$work/$name.log" 2>&1; then
        grep -E '^stat::number_of_executed_units|^Done' "$work/$name.log" >&2 || true
    else
        failed=1
        keep=1
        tail -n 40 "$work/$name.log" >&2
        echo "FAIL [fuzz $name]: log $work/$name.log, reproducers:" >&2
        ls -1 "$work/artifacts_$name"/* >&2 2>/dev/null || true
    fi
}
run fuzz_query "$here/corpus_query"
run fuzz_changelog
run fuzz_search_request "$here/corpus_search_request"

if [ "$failed" -ne 0 ]; then
    exit 1
fi
echo "PASS [fuzz]" >&2
