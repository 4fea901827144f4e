# SPDX-License-Identifier: Apache-2.0
# Private MariaDB servers for tests: each with its own datadir, on loopback,
# started by the test and stopped by it. Sourced by bash scripts.
#   mariadb_start NAME PORT [extra mariadbd options...]  -> datadir in $MARIADB_DIR/NAME
#   mariadb_stop NAME          stops it (SIGTERM, then SIGKILL)
#   mariadb_kill NAME          kill -9, as a crash
#   mariadb_sql NAME SQL       runs SQL as root through its socket
# Galera (a cluster of such servers on loopback, each with its own ports):
#   galera_start_cluster NAME...   installs and starts a cluster of these nodes,
#                                  the first bootstrapping it; waits until all are Synced
#   galera_start_node NAME [opts]  starts one node of it again (after a stop or a
#                                  kill -9: recovers its position first, so that it
#                                  can rejoin by IST)
#   galera_wait_synced NAME SIZE   waits until NAME is Synced in a cluster of SIZE
#   galera_port NAME               its SQL port
#   galera_status NAME VARIABLE    a SHOW STATUS value
#   galera_stop_all                stops every node started by galera_start_cluster
# MARIADB_START_WAIT: seconds a server may take to answer (default 30; a Galera
# joiner receives its state transfer first).

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
		--innodb-buffer-pool-size=64M --innodb-log-file-size=48M --max-connections=500 "$@" \
		2>>"$d/stderr.log" &
	echo $! >"$d/daemon.pid"
	local i
	for i in $(seq 1 $((${MARIADB_START_WAIT:-30} * 10))); do
		if mariadb --no-defaults -uroot -h127.0.0.1 -P"$port" -e 'SELECT 1' >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$(cat "$d/daemon.pid")" 2>/dev/null; then
			echo "mariadbd $name exited; its log:" >&2
			tail -30 "$d/stderr.log" "$d/error.log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "mariadbd $name did not answer on port $port within ${MARIADB_START_WAIT:-30} s" >&2
	tail -30 "$d/stderr.log" "$d/error.log" >&2
	return 1
}

mariadb_start() { # NAME PORT [options...]
	mariadb_install "$1" && mariadb_launch "$@"
}

# Waits up to TENTHS tenths of a second for PID to exit, then kills it
# (SIGKILL) and reaps it.
reap() { # PID TENTHS
	local i
	for i in $(seq 1 "$2"); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

mariadb_stop() { # NAME
	local f=$MARIADB_DIR/$1/daemon.pid pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	kill "$pid" 2>/dev/null || true
	reap "$pid" 200
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

# N distinct free TCP ports on loopback, one per line
free_ports() { # N
	python3 - "$1" <<'PYEOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
PYEOF
}

# ---------------------------------------------------------------- Galera

GALERA_PROVIDER=${GALERA_PROVIDER:-/usr/lib/galera/libgalera_smm.so}
GALERA_NODES=() # the cluster's nodes, in the order they were given

galera_port() { # NAME
	cat "$MARIADB_DIR/$1/port"
}

galera_status() { # NAME VARIABLE
	mariadb_sql "$1" "SHOW GLOBAL STATUS LIKE '$2'" | cut -f2
}

# gcomm:// and every node's group communication address
galera_address() {
	local n a=""
	for n in "${GALERA_NODES[@]}"; do
		a+="${a:+,}127.0.0.1:$(cat "$MARIADB_DIR/$n/gmcast_port")"
	done
	echo "gcomm://$a"
}

# The options that make NAME a node of the cluster, in the array galera_opts.
galera_node_options() { # NAME
	local d=$MARIADB_DIR/$1
	galera_opts=(--wsrep-on=ON --wsrep-provider="$GALERA_PROVIDER" --wsrep-cluster-name=metafs-test
		--wsrep-cluster-address="$(galera_address)" --wsrep-node-name="$1"
		--wsrep-provider-options="gmcast.listen_addr=tcp://127.0.0.1:$(cat "$d/gmcast_port");ist.recv_addr=127.0.0.1:$(cat "$d/ist_port");gcache.size=1G"
		--wsrep-sst-method=rsync --wsrep-sst-receive-address="127.0.0.1:$(cat "$d/sst_port")"
		--binlog-format=ROW --innodb-autoinc-lock-mode=2)
}

# Starts node NAME of the cluster (its datadir and ports made by
# galera_start_cluster). After a crash (grastate.dat's seqno is -1) it first
# recovers the last committed position from InnoDB, as galera_recovery does
# for systemd, so that the node can ask the others for the write sets it
# missed (IST) instead of a full copy (SST).
galera_start_node() { # NAME [mariadbd options...]
	local name=$1
	shift
	local d=$MARIADB_DIR/$name
	galera_node_options "$name"
	local opts=("${galera_opts[@]}")
	if [ -f "$d/data/grastate.dat" ] && grep -Eq '^seqno:[[:space:]]*-1' "$d/data/grastate.dat"; then
		local pos
		rm -f "$d/recover.log"
		mariadbd --no-defaults --user=mysql --datadir="$d/data" --skip-networking \
			--socket="$d/recover.sock" --pid-file="$d/recover.pid" --log-error="$d/recover.log" \
			--innodb-buffer-pool-size=64M --innodb-log-file-size=48M --wsrep-recover "${opts[@]}" \
			>/dev/null 2>&1 || true
		pos=$(sed -n 's/.*WSREP: Recovered position:[[:space:]]*//p' "$d/recover.log" 2>/dev/null | tail -n 1)
		if [ -n "$pos" ]; then
			opts+=(--wsrep-start-position="$pos")
		else
			echo "galera: no position recovered for $name; it will ask for a full state transfer" >&2
		fi
	fi
	MARIADB_START_WAIT=${MARIADB_START_WAIT:-180} mariadb_launch "$name" "$(galera_port "$name")" "${opts[@]}" "$@"
}

# Waits until node NAME is Synced, ready, and sees a cluster of SIZE nodes.
galera_wait_synced() { # NAME SIZE [TIMEOUT_S]
	local name=$1 size=$2 timeout=${3:-180} i state n ready pid
	pid=$(cat "$MARIADB_DIR/$name/daemon.pid" 2>/dev/null || true)
	for i in $(seq 1 $((timeout * 5))); do
		state=$(galera_status "$name" wsrep_local_state_comment 2>/dev/null || true)
		n=$(galera_status "$name" wsrep_cluster_size 2>/dev/null || true)
		ready=$(galera_status "$name" wsrep_ready 2>/dev/null || true)
		if [ "$state" = Synced ] && [ "$n" = "$size" ] && [ "$ready" = ON ]; then
			return 0
		fi
		if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
			echo "galera: node $name is not running; its log:" >&2
			tail -n 40 "$MARIADB_DIR/$name/error.log" >&2
			return 1
		fi
		sleep 0.2
	done
	echo "galera: node $name is '$state' in a cluster of '$n' (ready '$ready') after $timeout s, not Synced in $size; its log:" >&2
	tail -n 40 "$MARIADB_DIR/$name/error.log" >&2
	return 1
}

# Installs the nodes' datadirs, gives each its ports (SQL, group
# communication, IST, SST), bootstraps the cluster on the first node and
# joins the others one by one (each receiving an rsync SST); returns once
# every node is Synced in a cluster of all of them.
galera_start_cluster() { # NAME...
	[ -f "$GALERA_PROVIDER" ] || {
		echo "galera: $GALERA_PROVIDER is missing" >&2
		return 1
	}
	GALERA_NODES=("$@")
	local ports name i=0
	mapfile -t ports < <(free_ports $((4 * $#)))
	for name in "$@"; do
		mkdir -p "$MARIADB_DIR/$name"
		echo "${ports[i]}" >"$MARIADB_DIR/$name/port"
		echo "${ports[i + 1]}" >"$MARIADB_DIR/$name/gmcast_port"
		echo "${ports[i + 2]}" >"$MARIADB_DIR/$name/ist_port"
		echo "${ports[i + 3]}" >"$MARIADB_DIR/$name/sst_port"
		i=$((i + 4))
	done
	# one at a time: concurrent bootstraps collide on their temporary tables
	for name in "$@"; do
		mariadb_install "$name" || return 1
	done
	galera_start_node "$1" --wsrep-new-cluster || return 1
	galera_wait_synced "$1" 1 || return 1
	i=1
	for name in "${@:2}"; do
		i=$((i + 1))
		galera_start_node "$name" || return 1
		galera_wait_synced "$name" "$i" || return 1
	done
	for name in "$@"; do
		galera_wait_synced "$name" "$#" || return 1
	done
}

# Stops every node of the cluster at once (SIGTERM, then SIGKILL), then
# whatever is left of their state transfers (an rsync daemon, an SST
# script): only processes whose command line names this test's directory.
galera_stop_all() {
	local name f pids=() pid
	for name in "${GALERA_NODES[@]}"; do
		f=$MARIADB_DIR/$name/daemon.pid
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		kill -CONT "$pid" 2>/dev/null # a test may have stopped it (SIGSTOP)
		kill "$pid" 2>/dev/null && pids+=("$pid")
	done
	for pid in "${pids[@]}"; do
		reap "$pid" 300
	done
	for name in "${GALERA_NODES[@]}"; do
		rm -f "$MARIADB_DIR/$name/daemon.pid"
	done
	for pid in $(pgrep -f -- "$MARIADB_DIR/" 2>/dev/null); do
		[ "$pid" != $$ ] && kill -9 "$pid" 2>/dev/null
	done
	return 0
}
