#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# An unlinked file stays readable and writable while open; what close()
# acknowledged survives a kill -9 of the daemon.
source "$(dirname "$0")/lib.sh"
e2e_init python3
setup_mounted_volume

python3 - "$MNT" <<'PY' || fail "open-unlinked semantics"
import os, sys
mnt = sys.argv[1]
p = os.path.join(mnt, "f")
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"before ")
os.unlink(p)
assert not os.path.exists(p), "the name is still there after unlink"
os.write(fd, b"after")
os.lseek(fd, 0, 0)
assert os.read(fd, 100) == b"before after", "unlinked file lost bytes"
# another open of the same inode through /proc still works
fd2 = os.open("/proc/self/fd/%d" % fd, os.O_RDONLY)
assert os.read(fd2, 100) == b"before after"
os.close(fd2)
os.fsync(fd)
os.close(fd)
assert os.listdir(mnt) == [], "directory not empty: %r" % os.listdir(mnt)
PY

# close() durability: kill -9 the daemon right after the writes, remount
for i in $(seq 1 20); do
	head -c $((i * 7919)) /dev/urandom >"$MNT/file$i"
done
(cd "$MNT" && sha256sum file*) >"$E2E_TMP/sums"
pids=$(daemon_pids "$MNT")
[ -n "$pids" ] || fail "no daemon found for $MNT"
kill -9 $pids
for i in $(seq 1 50); do
	kill -0 $pids 2>/dev/null || break
	sleep 0.1
done
fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
E2E_MOUNTS=()
mount_volume "$VOL" "$MNT"
(cd "$MNT" && sha256sum -c --quiet "$E2E_TMP/sums") || fail "files closed before kill -9 are not intact"
echo "ok: open-unlinked files and close() durability across kill -9"
