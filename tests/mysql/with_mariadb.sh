#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs a command against a private MariaDB server: starts mariadbd on a free
# loopback port with its own datadir, exports
#   METAFS_TEST_MYSQL=mysql://root@127.0.0.1:PORT   (tests make databases under it)
#   METAFS_STATE_DIR=...                          (cluster volumes' local index)
# runs the command, then stops the server and removes its files.
#   tests/mysql/with_mariadb.sh COMMAND [ARGS...]
# Exits with the command's status; 77 (skip) when mariadbd is not installed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v mariadbd >/dev/null || { echo "SKIP: mariadbd is not installed (tools/install-deps.sh installs it)" >&2; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: starting mariadbd as user mysql needs root" >&2; exit 77; }
# shellcheck source=lib_mariadb.sh
source "$here/lib_mariadb.sh"
state=$(mktemp -d /tmp/metafs-state.XXXXXX)
cleanup() {
	mariadb_stop main
	rm -rf "$MARIADB_DIR" "$state"
}
trap cleanup EXIT
port=$(free_port)
mariadb_start main "$port" || exit 1
export METAFS_TEST_MYSQL=mysql://root@127.0.0.1:$port
export METAFS_STATE_DIR=$state
"$@"
