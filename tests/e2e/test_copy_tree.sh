#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Copies /usr/include into a mount and back out; contents, symlinks, modes
# and mtimes must come through unchanged.
source "$(dirname "$0")/lib.sh"
e2e_init diff find

SRC=${E2E_COPY_SRC:-/usr/include}
[ -d "$SRC" ] || skip "$SRC is missing"
setup_mounted_volume

start=$(now_ms)
must cp -a "$SRC" "$MNT/tree"
note "cp -a $SRC into the mount took $(($(now_ms) - start)) ms"

diff -r --no-dereference "$SRC" "$MNT/tree" >"$E2E_TMP/diff1" 2>&1 ||
    fail "diff -r $SRC vs the mount:"$'\n'"$(head -n 20 "$E2E_TMP/diff1")"

must cp -a "$MNT/tree" "$E2E_TMP/back"
diff -r --no-dereference "$SRC" "$E2E_TMP/back" >"$E2E_TMP/diff2" 2>&1 ||
    fail "diff -r $SRC vs the copy taken back out:"$'\n'"$(head -n 20 "$E2E_TMP/diff2")"

# Type, mode, size, symlink target and mtime (ns) of every entry.
tree_listing "$SRC" ' %T@' >"$E2E_TMP/list.src"
tree_listing "$MNT/tree" ' %T@' >"$E2E_TMP/list.mnt"
tree_listing "$E2E_TMP/back" ' %T@' >"$E2E_TMP/list.back"
[ -s "$E2E_TMP/list.src" ] || fail "empty listing of $SRC"
same_files "listings of $SRC and the mount (path type mode size target mtime)" \
    "$E2E_TMP/list.src" "$E2E_TMP/list.mnt"
same_files "listings of $SRC and the copy taken back out" \
    "$E2E_TMP/list.src" "$E2E_TMP/list.back"

nlinks=$(grep -c ' l ' "$E2E_TMP/list.mnt" || true)
note "$(wc -l <"$E2E_TMP/list.mnt") entries compared, $nlinks symlinks"
echo "PASS [$E2E_NAME]"
