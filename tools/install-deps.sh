#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs, from Debian's archive, whatever metafs needs to build, mount and
# test that this machine does not have yet, and any extra Debian packages
# named on the command line (the benchmarks name theirs). Safe to run again.
#   tools/install-deps.sh [PACKAGE...]
set -euo pipefail

PKGS=(gcc pkg-config meson ninja-build fuse3 libfuse3-dev librocksdb-dev libssl-dev
      libjansson-dev libmariadb-dev libsqlite3-dev libcurl4-openssl-dev libxxhash-dev clang attr git python3 tar diffutils coreutils procps "$@")

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "metafs: installing ${missing[*]} needs root" >&2; exit 1; }
	SUDO=sudo
fi
echo "metafs: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
