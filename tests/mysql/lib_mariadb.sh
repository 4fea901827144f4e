# SPDX-License-Identifier: Apache-2.0
# Private MariaDB servers for tests: each with its own datadir, on loopback,
# started by the test and stopped by it. Sourced by bash scripts.
#   mariadb_start NAME PORT [extra mariadbd options...]  -> datadir in $MARIADB_DIR/NAME
#   mariadb_stop NAME          stops it (SIGTERM, then SIGKILL)
#   mariadb_kill NAME          kill -9, as a crash
#   mariadb_sql NAME SQL       runs SQL as root through its socket

MARIADB_DIR=${MARIADB_DIR:-$(mktemp -d /tmp/metafs-mariadb.XXXXXX)}
chown mysql:mysql "$MARIADB_DIR" 2>/dev/null || true

mariadb_install() { # NAME
	local d=$MARIADB_DIR/$1
	mkdir -p "$d/data"
	chown -R mysql:mysql "$d"
	mariadb-install-db --no-defaults --user=mysql --datadir="$d/data" \
		--auth-root-authentication-method=normal --skip-test-db >"$d/install.log" 2>&1 || {
		cat "$d/install.log" >&2
		return 1
	}
}

mariadb_launch() { # NAME PORT [options...]
	local name=$1 port=$2
	shift 2
	local d=$MARIADB_DIR/$name
	mariadbd --no-defaults --user=mysql --datadir="$d/data" --port="$port" --bind-address=127.0.0.1 \
		--socket="$d/sock" --pid-file="$d/pid" --log-error="$d/error.log" --skip-name-resolve \
		--innodb-buffer-pool-size=64M --innodb-log-file-size=48M --max-connections=500 "$@" &
	echo $! >"$d/daemon.pid"
	local i
	for i in $(seq 1 300); do
		if mariadb --no-defaults -uroot -h127.0.0.1 -P"$port" -e 'SELECT 1' >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$(cat "$d/daemon.pid")" 2>/dev/null; then
			echo "mariadbd $name exited; its log:" >&2
			tail -30 "$d/error.log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "mariadbd $name did not answer on port $port within 30 s" >&2
	tail -30 "$d/error.log" >&2
	return 1
}

mariadb_start() { # NAME PORT [options...]
	mariadb_install "$1" && mariadb_launch "$@"
}

mariadb_stop() { # NAME
	local f=$MARIADB_DIR/$1/daemon.pid pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	kill "$pid" 2>/dev/null || true
	local i
	for i in $(seq 1 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -f "$f"
}

mariadb_kill() { # NAME
	local f=$MARIADB_DIR/$1/daemon.pid
	[ -f "$f" ] || return 0
	kill -9 "$(cat "$f")" 2>/dev/null || true
	wait "$(cat "$f")" 2>/dev/null || true
	rm -f "$f"
}

mariadb_sql() { # NAME SQL
	mariadb --no-defaults -uroot --socket="$MARIADB_DIR/$1/sock" -N -B -e "$2"
}

# a free TCP port on loopback
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
