#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# metafs find against a model: a random tree (names from a small vocabulary
# with spaces, dashes and non-ASCII words, sizes, modes, owners, hard links,
# symlinks, fifos, tags, JSON and text xattrs) is built from a seed, random
# queries are answered by `metafs find --consistent -0` and by a walk of the
# mount (helpers/search_oracle.py, which documents the semantics it models),
# and the answers must agree exactly; then random renames, deletions, xattr
# changes, truncations and new links, and fresh queries, twice; last, the
# same with an index rebuilt by metafs reindex.
# SEARCH_SEED=N repeats a run; SEARCH_QUERIES=N sets the queries a round.
source "$(dirname "$0")/lib.sh"
e2e_init python3 setfattr
ORACLE=$(cd "$(dirname "$0")" && pwd)/helpers/search_oracle.py
[ -f "$ORACLE" ] || fail "missing $ORACLE"
SEED=${SEARCH_SEED:-$(( $(date +%s%N) % 1000000 ))}
NQ=${SEARCH_QUERIES:-60}
note "seed $SEED (rerun with SEARCH_SEED=$SEED)"
echo "seed: $SEED"
setup_mounted_volume

# The daemon builds the first index in the background.
for _ in $(seq 1 100); do
    [ -e "$VOL/index.sqlite" ] && break
    sleep 0.1
done
[ -e "$VOL/index.sqlite" ] || fail "no $VOL/index.sqlite 10 s after mounting"

t0=$(now_ms)
python3 "$ORACLE" build "$MNT" "$SEED" || fail "building the random tree failed (seed $SEED)"
note "built the tree in $(( $(now_ms) - t0 )) ms"

failed=0
for round in 0 1 2; do
    if [ "$round" -gt 0 ]; then
        python3 "$ORACLE" mutate "$MNT" "$SEED" "$round" || fail "mutation round $round failed (seed $SEED)"
    fi
    t0=$(now_ms)
    if ! python3 "$ORACLE" check "$MNT" "$VOL" "$METAFS" "$SEED" "$round" "$NQ"; then
        failed=1
    fi
    note "round $round checked in $(( $(now_ms) - t0 )) ms"
done

# The same answers from an index rebuilt from the metadata (of the unmounted
# volume; test_search.sh rebuilds one under a running daemon).
unmount_volume "$MNT"
must "$METAFS" reindex "$VOL"
mount_volume "$VOL" "$MNT"
python3 "$ORACLE" check "$MNT" "$VOL" "$METAFS" "$SEED" 9 "$(( NQ / 2 ))" || failed=1
[ "$failed" -eq 0 ] || fail "metafs find and the model disagree (seed $SEED); see MISMATCH lines above"
echo "PASS [$E2E_NAME]"
