#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Filesystem benchmarks: metafs beside a pass-through FUSE reference, plain
# ext4 and the FUSE peers Debian packages, in one run.
#   bench/run_fs.sh [--quick] [run_fs.py options; see --help]
# Installs what it needs (fio, fs_mark, gnuplot, bindfs, fuse-overlayfs),
# builds, and writes bench/results/fs.md, fs.json and fs.png. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh fio fsmark gnuplot-nox bindfs fuse-overlayfs
tools/build.sh build >/dev/null
exec python3 bench/run_fs.py "$@"
