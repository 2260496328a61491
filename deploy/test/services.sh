#!/usr/bin/env bash
# Test services for the tms integration tests: PostgreSQL 15, Mosquitto and
# Apache Kafka 4.x in KRaft mode: by default a single node (broker+controller
# in one JVM), in cluster mode three (docs/reliability.md), all on 127.0.0.1
# with ports picked at run time so several runs can coexist.
#
# Usage:
#   services.sh start [--cluster] [--secure|--no-secure] <statedir>
#                                   start them; prints `export ...` lines on
#                                   stdout (also written to <statedir>/env)
#   services.sh stop <statedir>     stop everything started in <statedir>
#                                   (safe to call twice)
#   services.sh run [--cluster] [--secure|--no-secure] -- <cmd...>
#                                   fresh temp statedir, start, export the
#                                   addresses, run <cmd>, then ALWAYS stop and
#                                   remove the statedir; exits with <cmd>'s code
#   services.sh kafka-stop|kafka-kill|kafka-start <statedir> <node>
#                                   cluster mode: stop (SIGTERM), kill
#                                   (SIGKILL) or start again node 1, 2 or 3
#   services.sh pg-restart <statedir>
#                                   pg_ctl restart -m immediate (a crash:
#                                   every connection cut, crash recovery)
#   services.sh mosquitto-restart <statedir>
#                                   stop Mosquitto (SIGTERM: it saves its
#                                   persistence file) and start it again on
#                                   the same port
#
# Exported variables: DATABASE_URL, MQTT_URL, KAFKA_BROKERS,
# TMS_TEST_REQUIRE_SERVICES=1; in cluster mode also TMS_SERVICES_KAFKA_NODES=3,
# TMS_KAFKA_NODE_1..3 (each node's host:port); in both modes
# TMS_SERVICES_STATE (the statedir, for kafka-stop|kill|start, pg-restart
# and mosquitto-restart).
#
# Cluster mode (--cluster, or TMS_SERVICES_KAFKA_NODES=3): three combined
# broker+controller nodes (see start_kafka_node for why combined), with
# default.replication.factor=3, min.insync.replicas=2 and the internal
# topics (offsets, transactions) replicated three times, min ISR 2.
#
# Secure services (--secure; the default but in cluster mode, where the
# fault tests do not use them; TMS_SERVICES_SECURE=0|1 also chooses): a test
# CA and a server certificate for 127.0.0.1 and localhost are made with
# openssl into <statedir>/tls, and
#   - one more Kafka node, a cluster of its own, whose only listener for
#     clients (and between brokers) is SASL_SSL with SCRAM-SHA-512: users
#     `tms` (random password) and `broker` made by the storage format
#     (--add-scram); its controller listener is PLAINTEXT on loopback;
#   - a second Mosquitto listener with TLS;
#   - Postgres with ssl=on (plain connections still accepted);
# exporting KAFKA_SECURE_BROKERS, KAFKA_SECURE_CA_FILE,
# KAFKA_SECURE_USERNAME, KAFKA_SECURE_PASSWORD, MQTT_TLS_URL,
# MQTT_SECURE_CA_FILE (not MQTT_TLS_CA_FILE: that is tms's own setting, and
# every tms a test starts would inherit it) and DATABASE_TLS_URL
# (sslmode=verify-full, sslrootcert the CA).
#
# Optional environment:
#   PG_BIN              PostgreSQL bin dir (default /usr/lib/postgresql/15/bin)
#   KAFKA_HEAP_OPTS     JVM heap flags of each Kafka node (default
#                       -Xms256m -Xmx1g, in cluster mode -Xms128m -Xmx512m)
#   TMS_SERVICES_KAFKA_NODES  1 (default) or 3 (cluster mode)
#   TMS_SERVICES_KEEP=1 `run` keeps the (stopped) statedir with its logs
#   TMS_SERVICES_SECURE 1 or 0: the secure services (see above)
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
    local dir=$1 port=$2 tls=${3:-}
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
    if [ -n "$tls" ]; then
        # The key must belong to the server's user and be private to it.
        cp "$dir/tls/server.key" "$dir/pg/server.key"
        chmod 600 "$dir/pg/server.key"
        if is_root; then chown postgres: "$dir/pg/server.key"; fi
        cat >>"$data/postgresql.conf" <<EOF
ssl = on
ssl_cert_file = '$dir/tls/server.crt'
ssl_key_file = '$dir/pg/server.key'
EOF
    fi
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
    local dir=$1 port=$2 tls_port=${3:-} conf="$1/mosquitto.conf"
    mkdir -p "$dir/mosquitto"
    {
        echo "listener $port 127.0.0.1"
        echo "allow_anonymous true"
        # Persistence on, as a production broker runs: the persistent
        # sessions, their subscriptions and queued QoS 1 messages survive
        # a restart (mosquitto-restart). Written at shutdown and every
        # autosave_interval seconds.
        echo "persistence true"
        echo "persistence_location $dir/mosquitto/"
        echo "autosave_interval 5"
        echo "max_queued_messages 200000"
        echo "max_inflight_messages 100"
        echo "log_dest stdout"
        # As root, mosquitto otherwise drops privileges to the `mosquitto`
        # user (or refuses to run when that user does not exist).
        if is_root; then echo "user root"; fi
        if [ -n "$tls_port" ]; then
            # A second listener, with TLS (the global settings above
            # apply to both: per_listener_settings is off).
            echo "listener $tls_port 127.0.0.1"
            echo "cafile $dir/tls/ca.crt"
            echo "certfile $dir/tls/server.crt"
            echo "keyfile $dir/tls/server.key"
        fi
    } >"$conf"
    echo "$port" >"$dir/mosquitto.port"
    launch_mosquitto "$dir"
}

# launch_mosquitto <statedir>: start Mosquitto on its configuration and
# wait until its port answers.
launch_mosquitto() {
    local dir=$1 port
    port=$(cat "$dir/mosquitto.port")
    mosquitto -c "$dir/mosquitto.conf" </dev/null >>"$dir/mosquitto.log" 2>&1 &
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

# The fault tests' restarts of Postgres and Mosquitto.
cmd_pg_restart() {
    local dir
    dir=$(cd "$1" && pwd)
    [ -f "$dir/pg/data/postmaster.pid" ] || die "Postgres is not running in $dir"
    (cd "$dir" && as_pg "$PG_BIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/postgres.log" -m immediate -w -t 60 restart >/dev/null) ||
        { tail -n 30 "$dir/pg/postgres.log" >&2; die "pg_ctl restart failed"; }
    log "Postgres restarted (-m immediate)"
}

cmd_mosquitto_restart() {
    local dir
    dir=$(cd "$1" && pwd)
    [ -f "$dir/mosquitto.pid" ] && alive "$(cat "$dir/mosquitto.pid")" || die "Mosquitto is not running in $dir"
    kill_pidfile "$dir/mosquitto.pid" 10
    launch_mosquitto "$dir"
    log "Mosquitto restarted"
}

# ---------------------------------------------------------------- Kafka

# Format the storage and launch the single broker in the background (see
# wait_kafka).
# kafka_common <kdir> <replicas> <min ISR>: the settings every node of
# every mode shares, for topics of <replicas> replicas.
kafka_common() {
    cat <<EOF
log.dirs=$1/data
num.partitions=3
auto.create.topics.enable=false
min.insync.replicas=$3
offsets.topic.replication.factor=$2
transaction.state.log.replication.factor=$2
transaction.state.log.min.isr=$3
# Fewer internal partitions than the defaults (50) so the first consumer
# group / transaction does not wait for 50 partitions to be created.
offsets.topic.num.partitions=3
transaction.state.log.num.partitions=3
group.initial.rebalance.delay.ms=0
# Share groups off (also off by the share.version=0 feature default).
group.share.enable=false
share.coordinator.state.topic.replication.factor=$2
share.coordinator.state.topic.min.isr=$3
EOF
}

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
EOF
    kafka_common "$kdir" 1 1 >>"$kdir/server.properties"
    echo "$port" >"$kdir/port"
    write_log4j "$kdir"
    # --standalone: this node is the sole voter of a dynamic (KIP-853) quorum,
    # matching controller.quorum.bootstrap.servers above.
    format_kafka "$kdir" "$(new_cluster_id)" --standalone
    launch_kafka "$dir" "" "${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
}

# Cluster mode (--cluster, or TMS_SERVICES_KAFKA_NODES=3): node $2 of three.
# Each JVM is both a broker and one of the three controllers ("combined"
# nodes). Three dedicated controllers beside three brokers would need six
# JVMs on a two-core test machine; combined nodes are what Kafka documents
# for development and test clusters, and they make the fault tests harsher,
# not softer: killing a node takes a broker and a controller away at once,
# and stopping two of three also loses the controller quorum (no leader can
# be elected until one comes back), which a production cluster with
# dedicated controllers would not suffer from a broker outage alone.
# $3: the node's PLAINTEXT port; $4: the quorum's voters (id@host:port,...);
# $5: the node's controller port; $6: the cluster id.
start_kafka_node() {
    local dir=$1 i=$2 port=$3 voters=$4 cport=$5 cid=$6 kdir="$1/kafka$2"
    mkdir -p "$kdir/data"
    cat >"$kdir/server.properties" <<EOF
# Node $i of a three-node KRaft cluster: broker and controller in one JVM
# (see start_kafka_node in services.sh for why).
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
# What a replicated production cluster runs with: every partition on all
# three nodes, a write acknowledged (acks=all) once two of them have it.
default.replication.factor=3
EOF
    kafka_common "$kdir" 3 2 >>"$kdir/server.properties"
    echo "$port" >"$kdir/port"
    write_log4j "$kdir"
    # With a static quorum (controller.quorum.voters) every node is
    # formatted alike, with the same cluster id.
    format_kafka "$kdir" "$cid"
    # A modest heap each, so that three nodes fit beside the tests.
    launch_kafka "$dir" "$i" "${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
}

# make_tls <statedir>: a test CA and a server certificate it signs, for
# 127.0.0.1 and localhost (what the tests dial), in <statedir>/tls: ca.crt,
# server.crt, server.key (PKCS#8, unencrypted) and kafka-keystore.pem (key
# and certificate, Kafka's PEM keystore). Valid for two days.
make_tls() {
    local t="$1/tls"
    mkdir -p "$t"
    (
        cd "$t"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=tms test CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
        printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=CA:FALSE" \
            "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" >server.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 \
            -extfile server.ext
        cat server.key server.crt >kafka-keystore.pem
        chmod 600 ca.key server.key kafka-keystore.pem
        chmod 644 ca.crt server.crt
    ) >"$1/tls.log" 2>&1 || { cat "$1/tls.log" >&2; die "making the test certificates failed"; }
    chmod 755 "$t"
}

# start_kafka_secure <statedir> <SASL_SSL port> <controller port>: a
# single-node cluster of its own whose only listener for clients and
# between brokers is SASL_SSL (SCRAM-SHA-512, the certificate of make_tls);
# users `tms` (password in <statedir>/kafkasecure/password) and `broker`.
start_kafka_secure() {
    local dir=$1 port=$2 cport=$3 kdir="$1/kafkasecure" bpw tpw
    mkdir -p "$kdir/data"
    bpw=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')
    tpw=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')
    echo "$tpw" >"$kdir/password"
    chmod 600 "$kdir/password"
    cat >"$kdir/server.properties" <<EOF
# A single node (broker and controller) that accepts clients only over
# SASL_SSL with SCRAM-SHA-512: the "broker that requires both" of the
# TestSecure... tests.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=SASL_SSL://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="$bpw";
ssl.keystore.type=PEM
ssl.keystore.location=$dir/tls/kafka-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$dir/tls/ca.crt
ssl.endpoint.identification.algorithm=https
EOF
    kafka_common "$kdir" 1 1 >>"$kdir/server.properties"
    echo "$port" >"$kdir/port"
    write_log4j "$kdir"
    format_kafka "$kdir" "$(new_cluster_id)" --standalone \
        --add-scram "SCRAM-SHA-512=[name=broker,password=$bpw]" \
        --add-scram "SCRAM-SHA-512=[name=tms,password=$tpw]"
    launch_kafka "$dir" secure "${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
}

# Without a configuration log4j2 logs only ERRORs, and we need the INFO
# "Kafka Server started" line to detect readiness.
write_log4j() {
    cat >"$1/log4j2.properties" <<'EOF'
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
}

# Random cluster id: 16 random bytes, URL-safe base64 without padding
# (Kafka's Uuid format). Avoid a leading '-', which the CLI would parse as
# an option (Kafka's own Uuid.randomUuid() avoids it for that reason).
new_cluster_id() {
    local cid
    while :; do
        cid=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
        [ "${cid:0:1}" != "-" ] && break
    done
    echo "$cid"
}

# format_kafka <kdir> <cluster id> [StorageTool flags...]
format_kafka() {
    local kdir=$1 cid=$2
    shift 2
    java -Djava.awt.headless=true "-Dlog4j2.configurationFile=$kdir/log4j2.properties" \
        -cp "$KAFKA_LIB/*" kafka.tools.StorageTool format "$@" \
        -t "$cid" -c "$kdir/server.properties" >"$kdir/format.log" 2>&1 ||
        { tail -n 30 "$kdir/format.log" >&2; die "Kafka storage format failed ($kdir)"; }
}

# launch_kafka <statedir> <node: "" for the single broker, else 1..3>
# <heap flags>: start the JVM of a formatted node in the background; its pid
# goes to <statedir>/kafka<node>.pid, its output is appended to
# <statedir>/kafka<node>.log (a restarted node adds to it).
launch_kafka() {
    local dir=$1 i=$2 heap=$3 kdir="$1/kafka$2"
    echo "$heap" >"$kdir/heap"
    # shellcheck disable=SC2086 # the heap flags are a list
    java $heap -Djava.awt.headless=true "-Dlog4j2.configurationFile=$kdir/log4j2.properties" \
        -cp "$KAFKA_LIB/*" kafka.Kafka "$kdir/server.properties" </dev/null >>"$dir/kafka$i.log" 2>&1 &
    echo $! >"$dir/kafka$i.pid"
    disown $!
}

# wait_kafka <statedir> <port> [node] [starts logged before]: the node is
# ready once its PLAINTEXT port accepts connections AND it logged that it
# finished starting (it is unfenced, i.e. RUNNING, by then) more often than
# before this start.
wait_kafka() {
    local dir=$1 port=$2 i=${3:-} before=${4:-0}
    local pid logf="$dir/kafka$i.log"
    pid=$(cat "$dir/kafka$i.pid")
    local deadline=$((SECONDS + 120))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if port_open "$port" && [ "$(grep -c 'Kafka Server started' "$logf")" -gt "$before" ]; then
            return 0
        fi
        if ! alive "$pid"; then
            tail -n 40 "$logf" >&2
            die "Kafka${i:+ node $i} exited during start-up"
        fi
        sleep 0.1
    done
    tail -n 40 "$logf" >&2
    die "Kafka${i:+ node $i} did not become ready within 120 s"
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

# secure_services: 1 when the secure services are to start (see the top).
secure_services() {
    local def=1
    [ "$(kafka_nodes)" = 3 ] && def=0
    local v=${TMS_SERVICES_SECURE:-$def}
    [ "$v" = 1 ] || [ "$v" = 0 ] || die "TMS_SERVICES_SECURE must be 1 or 0, not $v"
    echo "$v"
}

# kafka_nodes: how many Kafka nodes to start (1, or 3 in cluster mode).
kafka_nodes() {
    local n=${TMS_SERVICES_KAFKA_NODES:-1}
    [ "$n" = 1 ] || [ "$n" = 3 ] || die "TMS_SERVICES_KAFKA_NODES must be 1 or 3, not $n"
    echo "$n"
}

cmd_start() {
    local dir=$1 nodes secure
    nodes=$(kafka_nodes)
    secure=$(secure_services)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # The postgres user must be able to reach its directory under here.
    chmod 755 "$dir"

    ensure_mosquitto
    ensure_kafka_jars

    local ports pg_port mq_port
    # The last three are the secure services' (used or not).
    ports=$(free_ports $((2 + 2 * nodes + 3)))
    pg_port=$(sed -n 1p <<<"$ports")
    mq_port=$(sed -n 2p <<<"$ports")
    local ks_port ksc_port mqs_port secure_env=""
    ks_port=$(sed -n "$((3 + 2 * nodes))p" <<<"$ports")
    ksc_port=$(sed -n "$((4 + 2 * nodes))p" <<<"$ports")
    mqs_port=$(sed -n "$((5 + 2 * nodes))p" <<<"$ports")
    if [ "$secure" = 1 ]; then
        make_tls "$dir"
        secure_env+="export KAFKA_SECURE_BROKERS='127.0.0.1:$ks_port'"$'\n'
        secure_env+="export KAFKA_SECURE_CA_FILE='$dir/tls/ca.crt'"$'\n'
        secure_env+="export KAFKA_SECURE_USERNAME='tms'"$'\n'
        secure_env+="export MQTT_TLS_URL='ssl://127.0.0.1:$mqs_port'"$'\n'
        secure_env+="export MQTT_SECURE_CA_FILE='$dir/tls/ca.crt'"$'\n'
        secure_env+="export DATABASE_TLS_URL='postgres://postgres@127.0.0.1:$pg_port/tms?sslmode=verify-full&sslrootcert=$dir/tls/ca.crt'"$'\n'
    else
        mqs_port=""
    fi

    # Kafka's JVM start-up is the slowest part: launch it first and bring up
    # Postgres and Mosquitto while it boots.
    local brokers="" nodes_env="" i
    if [ "$nodes" = 1 ]; then
        local k_port kc_port
        k_port=$(sed -n 3p <<<"$ports")
        kc_port=$(sed -n 4p <<<"$ports")
        start_kafka "$dir" "$k_port" "$kc_port"
        brokers="127.0.0.1:$k_port"
    else
        local kports=() cports=() voters="" cid
        for i in 1 2 3; do
            kports[i]=$(sed -n "$((1 + 2 * i))p" <<<"$ports")
            cports[i]=$(sed -n "$((2 + 2 * i))p" <<<"$ports")
            voters+="${voters:+,}$i@127.0.0.1:${cports[i]}"
            brokers+="${brokers:+,}127.0.0.1:${kports[i]}"
            nodes_env+="export TMS_KAFKA_NODE_$i='127.0.0.1:${kports[i]}'"$'\n'
        done
        cid=$(new_cluster_id)
        for i in 1 2 3; do
            start_kafka_node "$dir" "$i" "${kports[i]}" "$voters" "${cports[i]}" "$cid"
        done
        nodes_env+="export TMS_SERVICES_KAFKA_NODES=3"$'\n'
    fi
    # For pg-restart, mosquitto-restart and (cluster mode) kafka-*.
    nodes_env+="export TMS_SERVICES_STATE='$dir'"$'\n'
    # The secure node's storage format (a JVM of its own) runs beside the
    # other services' start-up rather than before it.
    local secure_pid=""
    if [ "$secure" = 1 ]; then
        start_kafka_secure "$dir" "$ks_port" "$ksc_port" &
        secure_pid=$!
    fi
    start_postgres "$dir" "$pg_port" "${mqs_port:+tls}"
    start_mosquitto "$dir" "$mq_port" "$mqs_port"
    if [ "$nodes" = 1 ]; then
        wait_kafka "$dir" "$k_port"
    else
        for i in 1 2 3; do wait_kafka "$dir" "${kports[i]}" "$i"; done
    fi
    if [ -n "$secure_pid" ]; then
        wait "$secure_pid" || die "the secure Kafka node did not start (see $dir/kafkasecure)"
        wait_kafka "$dir" "$ks_port" secure
        secure_env+="export KAFKA_SECURE_PASSWORD='$(cat "$dir/kafkasecure/password")'"$'\n'
    fi

    {
        echo "export DATABASE_URL='postgres://postgres@127.0.0.1:$pg_port/tms?sslmode=disable'"
        echo "export MQTT_URL='tcp://127.0.0.1:$mq_port'"
        echo "export KAFKA_BROKERS='$brokers'"
        echo "export TMS_TEST_REQUIRE_SERVICES=1"
        printf '%s' "$nodes_env"
        printf '%s' "$secure_env"
    } >"$dir/env"
    log "postgres=127.0.0.1:$pg_port mqtt=127.0.0.1:$mq_port kafka=$brokers${mqs_port:+ secure: kafka=127.0.0.1:$ks_port (SASL_SSL) mqtt=ssl://127.0.0.1:$mqs_port postgres ssl=on} (state: $dir)"
}

# $2: seconds Kafka gets for a clean shutdown (about 2 s) before SIGKILL.
cmd_stop() {
    local dir=$1 kafka_grace=${2:-10} f
    [ -d "$dir" ] || return 0
    for f in "$dir"/kafka.pid "$dir"/kafka[0-9].pid "$dir"/kafkasecure.pid; do
        [ -f "$f" ] && kill_pidfile "$f" "$kafka_grace"
    done
    kill_pidfile "$dir/mosquitto.pid" 5
    stop_postgres "$dir"
}

# The fault tests' handles on one node of a cluster (<statedir> as
# exported in TMS_SERVICES_STATE, <i> 1..3):
#   kafka-stop   SIGTERM, a controlled shutdown (leaders moved away first),
#                up to 60 s before SIGKILL; returns once the JVM is gone
#   kafka-kill   SIGKILL at once (a crash); returns once the JVM is gone
#   kafka-start  start the node again on its old ports and data; returns
#                once it is RUNNING
# Stopping or killing a stopped node, or starting a running one, is an
# error: a test that does so has lost track of the cluster.
cmd_node() {
    local what=$1 dir=$2 i=$3
    [[ "$i" =~ ^[123]$ ]] || die "node must be 1, 2 or 3, not $i"
    dir=$(cd "$dir" && pwd)
    local kdir="$dir/kafka$i" pidfile="$dir/kafka$i.pid"
    [ -f "$kdir/server.properties" ] || die "no Kafka node $i in $dir (not started in cluster mode?)"
    case "$what" in
    stop | kill)
        [ -f "$pidfile" ] && alive "$(cat "$pidfile")" || die "Kafka node $i is not running"
        if [ "$what" = kill ]; then
            local pid
            pid=$(cat "$pidfile")
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 1 100); do
                alive "$pid" || break
                sleep 0.1
            done
            alive "$pid" && die "Kafka node $i (pid $pid) survived SIGKILL"
            rm -f "$pidfile"
        else
            kill_pidfile "$pidfile" 60
        fi
        log "Kafka node $i ${what/stop/stopp}ed"
        ;;
    start)
        if [ -f "$pidfile" ] && alive "$(cat "$pidfile")"; then die "Kafka node $i is running"; fi
        local before
        before=$(grep -c 'Kafka Server started' "$dir/kafka$i.log" || true)
        launch_kafka "$dir" "$i" "$(cat "$kdir/heap")"
        wait_kafka "$dir" "$(cat "$kdir/port")" "$i" "$before"
        log "Kafka node $i started"
        ;;
    esac
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

usage="services.sh start [--cluster] [--secure|--no-secure] <statedir> | stop <statedir> | run [--cluster] [--secure|--no-secure] -- <command...> | kafka-stop|kafka-kill|kafka-start <statedir> <node> | pg-restart|mosquitto-restart <statedir>"

# mode_flags: --cluster is TMS_SERVICES_KAFKA_NODES=3, --secure and
# --no-secure TMS_SERVICES_SECURE=1 and 0; sets SHIFTS to the flags taken.
mode_flags() {
    SHIFTS=0
    while :; do
        case "${1:-}" in
        --cluster) export TMS_SERVICES_KAFKA_NODES=3 ;;
        --secure) export TMS_SERVICES_SECURE=1 ;;
        --no-secure) export TMS_SERVICES_SECURE=0 ;;
        *) return 0 ;;
        esac
        shift
        SHIFTS=$((SHIFTS + 1))
    done
}
case "${1:-}" in
start)
    shift
    mode_flags "$@"
    shift "$SHIFTS"
    [ $# -eq 1 ] || die "usage: $usage"
    cmd_start "$1"
    cat "$(cd "$1" && pwd)/env"
    ;;
stop)
    [ $# -eq 2 ] || die "usage: $usage"
    cmd_stop "$2"
    ;;
run)
    shift
    mode_flags "$@"
    shift "$SHIFTS"
    [ "${1:-}" = "--" ] && shift
    cmd_run "$@"
    ;;
pg-restart)
    [ $# -eq 2 ] || die "usage: $usage"
    cmd_pg_restart "$2"
    ;;
mosquitto-restart)
    [ $# -eq 2 ] || die "usage: $usage"
    cmd_mosquitto_restart "$2"
    ;;
kafka-stop | kafka-kill | kafka-start)
    [ $# -eq 3 ] || die "usage: $usage"
    cmd_node "${1#kafka-}" "$2" "$3"
    ;;
*)
    die "usage: $usage"
    ;;
esac
