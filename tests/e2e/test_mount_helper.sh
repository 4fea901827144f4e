#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `mount -t fuse.metafs` and an fstab line reach metafs through mount.fuse3,
# which runs the `metafs` found on the default PATH.
source "$(dirname "$0")/lib.sh"
e2e_init mount umount

# mount.fuse3 finds `metafs` on the default PATH: point it at the binary
# under test for the duration, putting back an installed one afterwards
LINK=/usr/local/bin/metafs
SAVED=""
if [ -e "$LINK" ] || [ -L "$LINK" ]; then
	SAVED=$E2E_TMP/metafs.installed
	mv "$LINK" "$SAVED"
fi
ln -s "$(realpath "$METAFS")" "$LINK"
cleanup_link() {
	rm -f "$LINK"
	[ -z "$SAVED" ] || mv "$SAVED" "$LINK"
}
trap 'cleanup_link; e2e_cleanup' EXIT

VOL=$E2E_TMP/vol
MNT=$E2E_TMP/mnt
new_volume "$VOL"
mkdir -p "$MNT"

must mount -t fuse.metafs -o allow_other "$VOL" "$MNT"
E2E_MOUNTS+=("$MNT")
line=$(awk -v m="$MNT" '$2 == m { print $1, $3 }' /proc/mounts)
[ "$line" = "$VOL fuse.metafs" ] || fail "mount -t: /proc/mounts shows '$line'"
echo "through mount(8)" >"$MNT/f"
unmount_volume "$MNT"

echo "$VOL $MNT fuse.metafs defaults,allow_other,noauto 0 0" >"$E2E_TMP/fstab"
must mount -T "$E2E_TMP/fstab" "$MNT"
E2E_MOUNTS+=("$MNT")
is_mounted "$MNT" || fail "the fstab line did not mount"
[ "$(cat "$MNT/f")" = "through mount(8)" ] || fail "the file written through the first mount is not there"
must umount "$MNT"
for i in $(seq 1 50); do
	is_mounted "$MNT" || break
	sleep 0.1
done
is_mounted "$MNT" && fail "umount left the mount in place"
echo "ok: mount -t fuse.metafs and an fstab line"
