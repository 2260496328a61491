#!/usr/bin/env bash
# Test services for the tms integration tests: PostgreSQL 15, Mosquitto and a
# single-node Apache Kafka 4.x (KRaft, broker+controller in one JVM), all on
# 127.0.0.1 with ports picked at run time so several runs can coexist.
#
# Usage:
#   services.sh start <statedir>    start all three; prints `export ...` lines
#                                   on stdout (also written to <statedir>/env)
#   services.sh stop <statedir>     stop everything started in <statedir>
#                                   (safe to call twice)
#   services.sh run -- <cmd...>     fresh temp statedir, start, export the
#                                   addresses, run <cmd>, then ALWAYS stop and
#                                   remove the statedir; exits with <cmd>'s code
#
# Exported variables: DATABASE_URL, MQTT_URL, KAFKA_BROKERS,
# TMS_TEST_REQUIRE_SERVICES=1.
#
# Optional environment:
#   PG_BIN              PostgreSQL bin dir (default /usr/lib/postgresql/15/bin)
#   KAFKA_HEAP_OPTS     JVM heap flags for the broker (default -Xms256m -Xmx1g)
#   TMS_SERVICES_KEEP=1 `run` keeps the (stopped) statedir with its logs
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
KAFKA_DIR="$REPO_ROOT/deploy/kafka"
KAFKA_LIB="$KAFKA_DIR/target/lib"

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
# mosquitto lives in /usr/sbin, which is not on a normal user's PATH.
export PATH="$PATH:/usr/sbin:/sbin"

log() { echo "services.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command as the postgres OS user when we are root (initdb and the
# postmaster refuse to run as root); otherwise run it as ourselves.
as_pg() {
    if is_root; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u postgres -- "$@"
        else
            setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"
        fi
    else
        "$@"
    fi
}

# Print N distinct free TCP ports on 127.0.0.1, one per line. They are drawn
# at random from 20000-32767, i.e. below Linux's ephemeral range
# (32768-60999): a port handed out by binding port 0 could be grabbed by some
# outgoing connection before the service binds it, which is much less likely
# down here. Each candidate is checked by actually binding it.
free_ports() {
    local n=$1
    if command -v python3 >/dev/null 2>&1; then
        python3 - "$n" <<'EOF'
import random, socket, sys
n, got = int(sys.argv[1]), []
while len(got) < n:
    p = random.randint(20000, 32767)
    if p in got:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
        got.append(p)
    except OSError:
        pass
    finally:
        s.close()
print("\n".join(map(str, got)))
EOF
    else
        # Fallback without python: a port nobody answers on is taken as free.
        local got=() p
        while [ "${#got[@]}" -lt "$n" ]; do
            p=$((20000 + RANDOM % 12768))
            [[ " ${got[*]-} " == *" $p "* ]] && continue
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
                got+=("$p")
            fi
        done
        printf '%s\n' "${got[@]}"
    fi
}

# True while process $1 is running. A zombie counts as gone: it has exited
# and holds no ports; reaping it is up to its parent (init, for daemons like
# the postmaster), which in some containers happens only every few seconds.
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- Kafka jars

# Fetch the broker jars with Maven unless target/lib is already complete for
# the current pom.xml. A stamp (hash of pom.xml) detects interrupted fetches
# and version bumps; flock serialises concurrent runs on a clean clone.
ensure_kafka_jars() {
    local stamp_file="$KAFKA_DIR/target/lib.stamp" want
    want=$(sha256sum "$KAFKA_DIR/pom.xml" | cut -d' ' -f1)
    if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$want" ] &&
        [ -n "$(ls -A "$KAFKA_LIB" 2>/dev/null)" ]; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found (needed to fetch the Kafka jars)"
    mkdir -p "$KAFKA_DIR/target"
    (
        flock 9
        if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$want" ]; then
            exit 0 # another run fetched them while we waited
        fi
        log "fetching Kafka jars with Maven (first run only)..."
        rm -rf "$KAFKA_LIB" "$stamp_file"
        # Maven's output goes to a file: even with -B -q, Debian's Maven 3.8
        # prints stray ANSI escapes on stdout, which would pollute `start`.
        if ! mvn -B -q -f "$KAFKA_DIR/pom.xml" dependency:copy-dependencies \
            >"$KAFKA_DIR/target/mvn.log" 2>&1; then
            cat "$KAFKA_DIR/target/mvn.log" >&2
            exit 1
        fi
        echo "$want" >"$stamp_file"
    ) 9>"$KAFKA_DIR/target/.fetch.lock" || die "fetching the Kafka jars failed"
}

# ---------------------------------------------------------------- PostgreSQL

start_postgres() {
    local dir=$1 port=$2
    local data="$dir/pg/data" sock="$dir/pg/sock" logf="$dir/pg/postgres.log"
    [ -x "$PG_BIN/initdb" ] || die "PostgreSQL binaries not found in $PG_BIN (set PG_BIN)"
    if is_root; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' OS user"
    fi
    mkdir -p "$dir/pg/data" "$sock"
    touch "$logf"
    if is_root; then chown -R postgres: "$dir/pg"; fi
    chmod 700 "$data"

    # cd into the statedir: as the postgres user the caller's cwd (e.g. a
    # root-owned checkout) may not be accessible.
    (cd "$dir" && as_pg "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust \
        -E UTF8 --locale=C --no-sync --no-instructions >"$dir/pg/initdb.log" 2>&1) ||
        { cat "$dir/pg/initdb.log" >&2; die "initdb failed"; }

    # Test-only cluster: durability off for speed.
    cat >>"$data/postgresql.conf" <<EOF

# --- added by deploy/test/services.sh (throw-away test cluster) ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sock'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    echo "$port" >"$dir/pg/port"
    (cd "$dir" && as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$logf" -w -t 60 start >/dev/null) ||
        { tail -n 30 "$logf" >&2; die "PostgreSQL did not start"; }
    "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres tms ||
        die "createdb tms failed"
}

stop_postgres() {
    local dir=$1 data="$1/pg/data"
    # postmaster.pid exists only while the server runs, so this is idempotent.
    if [ -f "$data/postmaster.pid" ]; then
        local pid
        pid=$(head -n 1 "$data/postmaster.pid")
        (cd "$dir" && as_pg "$PG_BIN/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1) ||
            log "warning: pg_ctl stop failed"
        # pg_ctl returns once postmaster.pid is removed, a moment before the
        # process has exited; wait for that so that nothing is left behind.
        for _ in $(seq 1 50); do
            alive "$pid" || break
            sleep 0.1
        done
    fi
}

# ---------------------------------------------------------------- Mosquitto

ensure_mosquitto() {
    if command -v mosquitto >/dev/null 2>&1 && command -v mosquitto_pub >/dev/null 2>&1; then
        return 0
    fi
    is_root || die "mosquitto is not installed; run: sudo apt-get install -y mosquitto mosquitto-clients"
    log "installing mosquitto via apt..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        mosquitto mosquitto-clients) >&2 || die "apt-get install mosquitto failed"
}

start_mosquitto() {
    local dir=$1 port=$2 conf="$1/mosquitto.conf"
    {
        echo "listener $port 127.0.0.1"
        echo "allow_anonymous true"
        echo "persistence false"
        echo "max_queued_messages 200000"
        echo "max_inflight_messages 100"
        echo "log_dest stdout"
        # As root, mosquitto otherwise drops privileges to the `mosquitto`
        # user (or refuses to run when that user does not exist).
        if is_root; then echo "user root"; fi
    } >"$conf"
    mosquitto -c "$conf" </dev/null >"$dir/mosquitto.log" 2>&1 &
    echo $! >"$dir/mosquitto.pid"
    disown $! # no "Killed"/"Terminated" job notices from bash at stop time
    for _ in $(seq 1 100); do
        port_open "$port" && return 0
        alive "$(cat "$dir/mosquitto.pid")" || break
        sleep 0.1
    done
    tail -n 30 "$dir/mosquitto.log" >&2
    die "mosquitto did not start"
}

# ---------------------------------------------------------------- Kafka

# Format the storage and launch the broker in the background (see wait_kafka).
start_kafka() {
    local dir=$1 port=$2 cport=$3 kdir="$1/kafka"
    mkdir -p "$kdir/data"

    cat >"$kdir/server.properties" <<EOF
# Single-node KRaft: this JVM is both broker and (the only) controller.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$kdir/data
num.partitions=3
auto.create.topics.enable=false
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# Fewer internal partitions than the defaults (50) so the first consumer
# group / transaction does not wait for 50 partitions to be created.
offsets.topic.num.partitions=3
transaction.state.log.num.partitions=3
group.initial.rebalance.delay.ms=0
# Share groups off (also off by the share.version=0 feature default).
group.share.enable=false
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF

    # Without a configuration log4j2 logs only ERRORs, and we need the INFO
    # "Kafka Server started" line to detect readiness.
    cat >"$kdir/log4j2.properties" <<'EOF'
rootLogger.level=INFO
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
# The full config dump of every client/server is just noise here.
logger.config.name=org.apache.kafka.common.config.AbstractConfig
logger.config.level=WARN
EOF

    local java_opts=(-Djava.awt.headless=true
        "-Dlog4j2.configurationFile=$kdir/log4j2.properties"
        -cp "$KAFKA_LIB/*")

    # Random cluster id: 16 random bytes, URL-safe base64 without padding
    # (Kafka's Uuid format). Avoid a leading '-', which the CLI would parse
    # as an option (Kafka's own Uuid.randomUuid() avoids it for that reason).
    local cid
    while :; do
        cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
        [ "${cid:0:1}" != "-" ] && break
    done
    # --standalone: this node is the sole voter of a dynamic (KIP-853) quorum,
    # matching controller.quorum.bootstrap.servers above.
    java "${java_opts[@]}" kafka.tools.StorageTool format --standalone \
        -t "$cid" -c "$kdir/server.properties" >"$kdir/format.log" 2>&1 ||
        { tail -n 30 "$kdir/format.log" >&2; die "Kafka storage format failed"; }

    # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS is a list of flags
    java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} "${java_opts[@]}" \
        kafka.Kafka "$kdir/server.properties" </dev/null >"$dir/kafka.log" 2>&1 &
    echo $! >"$dir/kafka.pid"
    disown $!
}

wait_kafka() {
    local dir=$1 port=$2
    # Ready = the PLAINTEXT port accepts connections AND the broker logged
    # that it finished starting (it is unfenced, i.e. RUNNING, by then).
    local pid
    pid=$(cat "$dir/kafka.pid")
    local deadline=$((SECONDS + 120))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if port_open "$port" && grep -q 'Kafka Server started' "$dir/kafka.log"; then
            return 0
        fi
        if ! alive "$pid"; then
            tail -n 40 "$dir/kafka.log" >&2
            die "Kafka exited during start-up"
        fi
        sleep 0.1
    done
    tail -n 40 "$dir/kafka.log" >&2
    die "Kafka did not become ready within 120 s"
}

# Kill the process recorded in a pid file: SIGTERM, up to $2 seconds grace,
# then SIGKILL. Removes the pid file, so a second call is a no-op.
kill_pidfile() {
    local pidfile=$1 grace=$2 pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 $((grace * 10))); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
            # SIGKILL is asynchronous: wait (bounded) until it is gone.
            for _ in $(seq 1 50); do
                alive "$pid" || break
                sleep 0.1
            done
        fi
    fi
    rm -f "$pidfile"
}

# ---------------------------------------------------------------- commands

cmd_start() {
    local dir=$1
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # The postgres user must be able to reach its directory under here.
    chmod 755 "$dir"

    ensure_mosquitto
    ensure_kafka_jars

    local ports pg_port mq_port k_port kc_port
    ports=$(free_ports 4)
    { read -r pg_port; read -r mq_port; read -r k_port; read -r kc_port; } <<<"$ports"

    # Kafka's JVM start-up is the slowest part: launch it first and bring up
    # Postgres and Mosquitto while it boots.
    start_kafka "$dir" "$k_port" "$kc_port"
    start_postgres "$dir" "$pg_port"
    start_mosquitto "$dir" "$mq_port"
    wait_kafka "$dir" "$k_port"

    cat >"$dir/env" <<EOF
export DATABASE_URL='postgres://postgres@127.0.0.1:$pg_port/tms?sslmode=disable'
export MQTT_URL='tcp://127.0.0.1:$mq_port'
export KAFKA_BROKERS='127.0.0.1:$k_port'
export TMS_TEST_REQUIRE_SERVICES=1
EOF
    log "postgres=127.0.0.1:$pg_port mqtt=127.0.0.1:$mq_port kafka=127.0.0.1:$k_port (state: $dir)"
}

# $2: seconds Kafka gets for a clean shutdown (about 2 s) before SIGKILL.
cmd_stop() {
    local dir=$1 kafka_grace=${2:-10}
    [ -d "$dir" ] || return 0
    kill_pidfile "$dir/kafka.pid" "$kafka_grace"
    kill_pidfile "$dir/mosquitto.pid" 5
    stop_postgres "$dir"
}

cmd_run() {
    [ $# -gt 0 ] || die "usage: services.sh run -- <command...>"
    local dir
    dir=$(mktemp -d /tmp/tms-services.XXXXXX)
    # The trap runs on every exit path (command done, start-up failure,
    # Ctrl-C, SIGTERM); INT/TERM are turned into an exit so EXIT fires.
    # Note: bash runs these traps only after the foreground <cmd> returns, so
    # a signal must reach the whole process group (as Ctrl-C and CI job
    # cancellation do), not just this script.
    # shellcheck disable=SC2064 # expand $dir now
    trap "cleanup_run '$dir'" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    cmd_start "$dir"
    # shellcheck disable=SC1091
    . "$dir/env"

    local rc=0
    "$@" || rc=$?
    return "$rc"
}

cleanup_run() {
    local rc=$? dir=$1
    set +e
    # The state is thrown away, so skip Kafka's clean shutdown
    # (unless the state is being kept for inspection).
    if [ "${TMS_SERVICES_KEEP:-}" = 1 ]; then cmd_stop "$dir"; else cmd_stop "$dir" 0; fi
    if [ "${TMS_SERVICES_KEEP:-}" = 1 ]; then
        log "kept state and logs in $dir"
    else
        rm -rf "$dir"
    fi
    exit "$rc"
}

case "${1:-}" in
start)
    [ $# -eq 2 ] || die "usage: services.sh start <statedir>"
    cmd_start "$2"
    cat "$(cd "$2" && pwd)/env"
    ;;
stop)
    [ $# -eq 2 ] || die "usage: services.sh stop <statedir>"
    cmd_stop "$2"
    ;;
run)
    shift
    [ "${1:-}" = "--" ] && shift
    cmd_run "$@"
    ;;
*)
    die "usage: services.sh start <statedir> | stop <statedir> | run -- <command...>"
    ;;
esac
