#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One command from a fresh machine to a mounted metafs volume:
#   tools/quickstart.sh [VOLUME] [MOUNTPOINT]
# installs what is missing, builds, installs `metafs`, formats VOLUME (unless
# it already holds a volume) and mounts it at MOUNTPOINT.
set -euo pipefail
cd "$(dirname "$0")/.."
VOLUME=${1:-/var/lib/metafs/default}
MOUNTPOINT=${2:-/mnt/metafs}

tools/install-deps.sh
tools/build.sh build
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO ninja -C build install >/dev/null
METAFS=$(command -v metafs || echo /usr/local/bin/metafs)

if grep -qs " $(realpath -m "$MOUNTPOINT") fuse.metafs " /proc/mounts; then
	echo "metafs is already mounted at $MOUNTPOINT"
else
	$SUDO mkdir -p "$(dirname "$VOLUME")" "$MOUNTPOINT"
	if [ ! -e "$VOLUME/db/CURRENT" ]; then
		$SUDO "$METAFS" format "$VOLUME"
	fi
	$SUDO "$METAFS" mount "$VOLUME" "$MOUNTPOINT" -o allow_other
	echo "mounted $VOLUME at $MOUNTPOINT (log: $VOLUME/metafs.log)"
fi
cat <<EOT

Search is running (the daemon indexes every change). Try it:
  cd $MOUNTPOINT
  echo hello > notes.txt
  setfattr -n user.xdg.tags -v "draft,todo" notes.txt        # tag a file
  setfattr -n user.annotations -v '{"bicycles":4}' notes.txt  # a JSON value
  metafs find $MOUNTPOINT tag:draft --consistent               # find it
  metafs find $MOUNTPOINT 'annotations.bicycles:>3' -l
  getfattr -d notes.txt
  metafs changelog $MOUNTPOINT --json                         # every change, in order
  metafs find --help                                          # the query language

Lineage is recorded as programs read and write:
  sort notes.txt > sorted.txt
  metafs lineage $MOUNTPOINT/sorted.txt                        # made from notes.txt by sort
  metafs find $MOUNTPOINT 'generated-by:sort' --consistent

Unmount with: fusermount3 -u $MOUNTPOINT
EOT
