#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Renames a directory of 10 000 files: one rename, whatever the directory
# holds. All entries must be found under the new name, none under the old.
source "$(dirname "$0")/lib.sh"
e2e_init
setup_mounted_volume

N=${E2E_BIG_DIR_FILES:-10000}
mkdir -p "$MNT/a/big" "$MNT/b/c"

start=$(now_ms)
(
    cd "$MNT/a/big"
    for ((i = 1; i <= N; i++)); do
        : >"f$i"
    done
) || fail "creating $N files failed"
note "creating $N empty files took $(($(now_ms) - start)) ms"
echo "last one" >"$MNT/a/big/f$N"

count() {
    (cd "$1" && ls -f | wc -l)
}
[ "$(count "$MNT/a/big")" -eq $((N + 2)) ] ||
    fail "ls -f in a/big lists $(count "$MNT/a/big") entries before the move, expected $((N + 2))"

start=$(now_ms)
must mv "$MNT/a/big" "$MNT/b/c/moved"
note "mv of the directory of $N files took $(($(now_ms) - start)) ms"

[ ! -e "$MNT/a/big" ] || fail "a/big still exists after the move"
[ -z "$(ls -A "$MNT/a")" ] || fail "a is not empty after the move: $(ls -A "$MNT/a" | head -n 5)"
[ -d "$MNT/b/c/moved" ] || fail "b/c/moved is not a directory after the move"

got=$(count "$MNT/b/c/moved")
[ "$got" -eq $((N + 2)) ] || fail "ls -f in b/c/moved lists $got entries, expected $((N + 2))"

for ((i = 1; i <= N; i++)); do echo "f$i"; done | LC_ALL=C sort >"$E2E_TMP/want"
(cd "$MNT/b/c/moved" && ls -f | grep -v '^\.\.\?$' | LC_ALL=C sort) >"$E2E_TMP/got"
same_files "names in the moved directory (want vs got)" "$E2E_TMP/want" "$E2E_TMP/got"

[ "$(cat "$MNT/b/c/moved/f$N")" = "last one" ] || fail "the content of f$N is lost after the move"
[ -e "$MNT/b/c/moved/f1" ] || fail "stat of b/c/moved/f1 failed"
must_fail stat "$MNT/a/big/f1"
[ "$(stat -c %h "$MNT/a")" -eq 2 ] || fail "a has link count $(stat -c %h "$MNT/a") after losing its subdirectory, expected 2"
[ "$(stat -c %h "$MNT/b/c")" -eq 3 ] || fail "b/c has link count $(stat -c %h "$MNT/b/c") after gaining a subdirectory, expected 3"
[ "$(cd "$MNT/b/c/moved/.." && pwd -P)" = "$MNT/b/c" ] || fail "'..' of the moved directory is not b/c"

# The same after unmount and mount.
unmount_volume "$MNT"
mount_volume "$VOL" "$MNT"
[ ! -e "$MNT/a/big" ] || fail "a/big is back after remount"
(cd "$MNT/b/c/moved" && ls -f | grep -v '^\.\.\?$' | LC_ALL=C sort) >"$E2E_TMP/got2"
same_files "names in the moved directory after remount" "$E2E_TMP/want" "$E2E_TMP/got2"
echo "PASS [$E2E_NAME]"
