#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs git on a mount: init, add, commit, status, fsck, log, and a local
# clone (which hard-links objects) inside the same mount.
source "$(dirname "$0")/lib.sh"
e2e_init git diff

SRC=${E2E_GIT_SRC:-/usr/include/linux}
[ -d "$SRC" ] || skip "$SRC is missing"
setup_mounted_volume

export HOME=$E2E_TMP/home GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 LC_ALL=C
mkdir -p "$HOME"
git_() {
    git -c user.name=metafs-test -c user.email=test@metafs.invalid \
        -c init.defaultBranch=main -c safe.directory='*' "$@"
}

REPO=$MNT/repo
must cp -a "$SRC" "$REPO"
nfiles=$(find "$REPO" ! -type d | wc -l)
note "$nfiles files and symlinks in the work tree"

start=$(now_ms)
must git_ -C "$REPO" init -q
must git_ -C "$REPO" add .
must git_ -C "$REPO" commit -q -m x
note "git init+add+commit took $(($(now_ms) - start)) ms"

status=$(git_ -C "$REPO" status --porcelain) || fail "git status failed"
[ -z "$status" ] || fail "git status --porcelain is not empty after the commit:"$'\n'"$(echo "$status" | head -n 20)"

fsck=$(git_ -C "$REPO" fsck --full --strict 2>&1) || fail "git fsck failed:"$'\n'"$fsck"

log=$(git_ -C "$REPO" log --format='%s %an') || fail "git log failed"
[ "$log" = "x metafs-test" ] || fail "git log shows '$log', expected one commit 'x metafs-test'"

tracked=$(git_ -C "$REPO" ls-files | wc -l)
[ "$tracked" -eq "$nfiles" ] || fail "git tracks $tracked files, the tree has $nfiles"

must git_ clone -q "$REPO" "$MNT/clone"
diff -r --no-dereference -x .git "$SRC" "$MNT/clone" >"$E2E_TMP/diff" 2>&1 ||
    fail "the clone's work tree differs from $SRC:"$'\n'"$(head -n 20 "$E2E_TMP/diff")"
status=$(git_ -C "$MNT/clone" status --porcelain) || fail "git status in the clone failed"
[ -z "$status" ] || fail "git status in the clone is not empty:"$'\n'"$(echo "$status" | head -n 20)"
fsck=$(git_ -C "$MNT/clone" fsck --full --strict 2>&1) || fail "git fsck in the clone failed:"$'\n'"$fsck"
[ "$(git_ -C "$MNT/clone" rev-parse HEAD)" = "$(git_ -C "$REPO" rev-parse HEAD)" ] ||
    fail "the clone's HEAD differs from the origin's"

# A second commit: modify, delete and add files, then check again.
echo "/* changed */" >>"$(find "$REPO" -type f -name '*.h' | LC_ALL=C sort | head -n 1)"
rm "$(find "$REPO" -type f -name '*.h' | LC_ALL=C sort | tail -n 1)"
echo new >"$REPO/NEWFILE"
must git_ -C "$REPO" add -A
must git_ -C "$REPO" commit -q -m y
status=$(git_ -C "$REPO" status --porcelain) || fail "git status failed"
[ -z "$status" ] || fail "git status --porcelain is not empty after the second commit:"$'\n'"$status"
must git_ -C "$REPO" gc -q
fsck=$(git_ -C "$REPO" fsck --full --strict 2>&1) || fail "git fsck after gc failed:"$'\n'"$fsck"
must git_ -C "$MNT/clone" pull -q --ff-only
[ "$(git_ -C "$MNT/clone" log --format=%s | tr '\n' ' ')" = "y x " ] ||
    fail "the clone's log after pull is '$(git_ -C "$MNT/clone" log --format=%s | tr '\n' ' ')'"
echo "PASS [$E2E_NAME]"
