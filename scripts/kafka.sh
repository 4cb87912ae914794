#!/usr/bin/env bash
# Run Apache Kafka 4.x (KRaft, no ZooKeeper) from its Maven Central jars, for
# local tests and CI. No tarball, no Docker: `fetch` copies the broker's
# runtime jars into .cache/kafka-libs/ with Maven, and `start` runs
# `java -cp '.cache/kafka-libs/*' kafka.Kafka server.properties` per node.
#
# Usage:
#   scripts/kafka.sh fetch                          copy the jars (skipped when already there)
#   scripts/kafka.sh start [--nodes 1|3] [--port P] start a fresh cluster (data wiped), wait
#                                                   until every node serves, print the
#                                                   bootstrap list as the last stdout line
#   scripts/kafka.sh stop [--nodes 1|3|all]         stop nodes (default: every cluster)
#   scripts/kafka.sh stop all                       same as plain stop
#   scripts/kafka.sh stop-node N [--nodes 3]        stop node N, keep its data
#   scripts/kafka.sh kill-node N [--nodes 3]        SIGKILL node N (a crash: no controlled
#                                                   shutdown, its leaders fail), keep its data
#   scripts/kafka.sh start-node N [--nodes 3]       restart node N on its kept data, wait
#   scripts/kafka.sh status                         which nodes run
#   scripts/kafka.sh bootstrap [--nodes 1|3]        print the bootstrap list of a cluster
#
# Clusters (each node is a combined broker+controller):
#   --nodes 1  "single":   broker 127.0.0.1:${KAFKA_PORT:-19092}, controller port +100
#   --nodes 3  "cluster3": brokers 127.0.0.1:${KAFKA_PORT:-29092}..+2, controllers +100..+102
# Files: .cache/kafka-run/<cluster>/node-N/{server.properties,server.log,kafka.pid,data/}
# Progress goes to stderr; stdout carries only the bootstrap list (start,
# start-node, bootstrap) so that `BOOTSTRAP=$(scripts/kafka.sh start)` works.
#
# Environment:
#   KAFKA_PORT             first broker port (see above)
#   KAFKA_VERSION          Kafka version to fetch (default: the one in scripts/kafka/pom.xml)
#   KAFKA_HEAP_OPTS        default "-Xms64m -Xmx512m"
#   KAFKA_JVM_OPTS         default "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 ..."
#   KAFKA_START_TIMEOUT    seconds to wait for the nodes to serve (default 90)
#   KAFKA_STOP_TIMEOUT     seconds to wait after SIGTERM before SIGKILL (default 30)
#   KAFKA_EXTRA_PROPERTIES extra lines appended to every node's server.properties
#   JAVA_HOME, MAVEN_OPTS, ~/.m2/settings.xml are honoured as usual.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
CACHE_DIR="$REPO_ROOT/.cache"
LIBS_DIR="$CACHE_DIR/kafka-libs"
RUN_ROOT="$CACHE_DIR/kafka-run"
POM="$SCRIPT_DIR/kafka/pom.xml"
LOG4J_CONF="$SCRIPT_DIR/kafka/log4j2.properties"

START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms64m -Xmx512m}"
# C1 only (TieredStopAtLevel=1): with 3 JVMs on 2 cores, C2 compiler threads
# make startup ~1.6x slower; test traffic does not need C2's peak throughput.
# For broker benchmarks set KAFKA_JVM_OPTS without it.
JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError -XX:-OmitStackTraceInFastThrow -Djava.awt.headless=true}"
# The storage tool is a short-lived JVM: start it as cheaply as possible.
TOOL_JVM_OPTS="-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}

# ---------------------------------------------------------------- java / mvn

JAVA=""
find_java() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    JAVA="$JAVA_HOME/bin/java"
  elif command -v java >/dev/null 2>&1; then
    JAVA=$(command -v java)
  else
    die "java not found: install a JDK/JRE 17 or newer (e.g. apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME"
  fi
  local ver major
  ver=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
  major=${ver%%.*}
  [[ "$major" == 1 ]] && major=$(echo "$ver" | cut -d. -f2)
  if [[ "$major" =~ ^[0-9]+$ ]] && (( major < 17 )); then
    die "Kafka 4 needs Java 17 or newer, but $JAVA is version $ver: install openjdk-17 or point JAVA_HOME at a newer JDK"
  fi
}

pom_kafka_version() {
  sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1
}

fetch_stamp() {
  # Identifies what is in LIBS_DIR: the pom's content plus any version override.
  local sum
  sum=$(sha256sum "$POM" | cut -d' ' -f1)
  echo "kafka=${KAFKA_VERSION:-$(pom_kafka_version)} pom=$sum"
}

libs_ready() {
  local want
  want=$(fetch_stamp)
  [[ -f "$LIBS_DIR/.fetched" && "$(cat "$LIBS_DIR/.fetched")" == "$want" ]] \
    && compgen -G "$LIBS_DIR/kafka_2.13-*.jar" >/dev/null
}

cmd_fetch() {
  [[ -f "$POM" ]] || die "missing $POM"
  if libs_ready; then
    log "jars already in $LIBS_DIR ($(cut -d' ' -f1 "$LIBS_DIR/.fetched")); nothing to fetch"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 \
    || die "mvn not found: install Maven 3.6+ (e.g. apt-get install -y maven), it copies the Kafka jars from Maven Central"
  local version tmp out rc
  version=${KAFKA_VERSION:-$(pom_kafka_version)}
  mkdir -p "$CACHE_DIR"
  tmp=$(mktemp -d "$CACHE_DIR/kafka-libs.tmp.XXXXXX")
  out="$tmp.mvn.log"
  log "fetching Apache Kafka $version jars from Maven Central into $LIBS_DIR (mvn dependency:copy-dependencies)"
  local -a args=(-q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies "-Dkafka.libs.dir=$tmp")
  [[ -n "${KAFKA_VERSION:-}" ]] && args+=("-Dkafka.version=$KAFKA_VERSION")
  rc=0
  mvn "${args[@]}" >"$out" 2>&1 || rc=$?
  if (( rc != 0 )) || ! compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null; then
    {
      echo "kafka.sh: error: mvn failed (exit $rc) fetching Kafka $version; its output:"
      sed -e $'s/\x1b\\[[0-9;]*m//g' -e 's/^/  | /' "$out" | tail -n 60
      echo "kafka.sh: check that Maven Central is reachable (proxy/mirror in ~/.m2/settings.xml, MAVEN_OPTS),"
      echo "kafka.sh: that version $version exists (KAFKA_VERSION=4.x.y to pick another), then rerun: scripts/kafka.sh fetch"
    } >&2
    rm -rf "$tmp" "$out"
    exit 1
  fi
  rm -f "$out"
  fetch_stamp >"$tmp/.fetched"
  rm -rf "$LIBS_DIR"
  mv "$tmp" "$LIBS_DIR"
  local -a jars=("$LIBS_DIR"/*.jar)
  log "fetched ${#jars[@]} jars into $LIBS_DIR"
}

# ---------------------------------------------------------------- clusters

cluster_name() {
  case "$1" in
    1) echo single ;;
    3) echo cluster3 ;;
    *) die "--nodes must be 1 or 3 (got '$1')" ;;
  esac
}

# Loads NODES, BASE_PORT, CTRL_BASE_PORT, CLUSTER_ID of a started cluster.
load_cluster() {
  local dir="$RUN_ROOT/$1"
  [[ -f "$dir/cluster.env" ]] || die "cluster '$1' was never started here (no $dir/cluster.env): run scripts/kafka.sh start --nodes ${2:-?} first"
  # shellcheck disable=SC1091
  source "$dir/cluster.env"
}

node_dir() { echo "$RUN_ROOT/$1/node-$2"; }
broker_port() { echo $((BASE_PORT + $1 - 1)); }
ctrl_port() { echo $((CTRL_BASE_PORT + $1 - 1)); }

bootstrap_list() {
  local i out=""
  for ((i = 1; i <= NODES; i++)); do
    out+="${out:+,}127.0.0.1:$(broker_port "$i")"
  done
  echo "$out"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Prints the pid of node N of cluster C if that node's JVM is alive.
node_pid() {
  local dir pid
  dir=$(node_dir "$1" "$2")
  [[ -f "$dir/kafka.pid" ]] || return 1
  pid=$(<"$dir/kafka.pid")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a recycled pid: it must be this node's kafka.Kafka.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $dir/server.properties" || return 1
  echo "$pid"
}

write_properties() {
  local c=$1 i=$2 dir voters j rf txn_min_isr
  dir=$(node_dir "$c" "$i")
  voters=""
  for ((j = 1; j <= NODES; j++)); do
    voters+="${voters:+,}$j@127.0.0.1:$(ctrl_port "$j")"
  done
  rf=$NODES
  txn_min_isr=$(( NODES > 1 ? NODES - 1 : 1 ))
  cat >"$dir/server.properties" <<EOF
# Generated by scripts/kafka.sh for cluster '$c' node $i; regenerated on every start.
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(broker_port "$i"),CONTROLLER://127.0.0.1:$(ctrl_port "$i")
advertised.listeners=PLAINTEXT://127.0.0.1:$(broker_port "$i")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data

# Topics and internal topics sized for tests on a small machine.
auto.create.topics.enable=true
num.partitions=3
default.replication.factor=$rf
min.insync.replicas=1
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$txn_min_isr
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$txn_min_isr
group.initial.rebalance.delay.ms=0
# A follower that stops fetching (its broker crashed) leaves the ISR of the
# partitions it follows after 2-3 s, well before the controller fences its
# broker (broker.session.timeout.ms, 9 s) and elects new leaders for the
# partitions it led. Until it leaves, an acks=all write to any partition it
# follows waits for it: with Kafka's 30 s default every partition of a
# replication factor 3 topic on 3 nodes stalls until the fence, which a 5 s
# delivery timeout sees as the whole cluster down.
replica.lag.time.max.ms=2000
# Heartbeats every 0.5 s (default 2 s): a crashed broker is fenced
# broker.session.timeout.ms (9 s) after its last heartbeat, so at most 0.5 s
# (plus a busy machine's delay) sooner than 9 s after its crash; measured
# 6.8-8.3 s, against 5.6 s once with the default.
broker.heartbeat.interval.ms=500
unclean.leader.election.enable=false

# Threads: 2 cores are shared by up to 3 nodes.
num.network.threads=2
num.io.threads=4
num.replica.fetchers=1
num.recovery.threads.per.data.dir=1
background.threads=4
log.cleaner.threads=1
EOF
  if [[ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]]; then
    printf '\n# KAFKA_EXTRA_PROPERTIES\n%s\n' "$KAFKA_EXTRA_PROPERTIES" >>"$dir/server.properties"
  fi
}

random_cluster_id() {
  # A Kafka cluster id is a base64url (no padding) 16-byte UUID; the storage
  # tool rejects ids that start with '-'.
  local id
  while :; do
    id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ ${#id} == 22 && "$id" != -* ]] && { echo "$id"; return; }
  done
}

format_node() {
  local c=$1 i=$2 dir
  dir=$(node_dir "$c" "$i")
  # controller.quorum.voters is static, so Kafka 4 wants neither --standalone
  # nor --initial-controllers here.
  # shellcheck disable=SC2086
  if ! "$JAVA" $TOOL_JVM_OPTS -Dlog4j2.configurationFile="$LOG4J_CONF" -cp "$LIBS_DIR/*" \
      kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$dir/server.properties" \
      >"$dir/format.log" 2>&1; then
    log "formatting storage of node $i failed; $dir/format.log says:"
    sed 's/^/  | /' "$dir/format.log" | tail -n 30 >&2
    return 1
  fi
}

launch_node() {
  local c=$1 i=$2 dir
  dir=$(node_dir "$c" "$i")
  rm -f "$dir/kafka.pid"
  printf '\n===== kafka.sh: starting node %s at %s =====\n' "$i" "$(date -Is)" >>"$dir/server.log"
  # setsid: the node outlives this script and the caller's process group
  # (test runners, CI steps); the inner bash writes its own pid, then execs java.
  # shellcheck disable=SC2086,SC2016
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$dir/kafka.pid" \
    "$JAVA" $HEAP_OPTS $JVM_OPTS \
    -Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$dir" \
    -cp "$LIBS_DIR/*" kafka.Kafka "$dir/server.properties" \
    >>"$dir/server.log" 2>&1 </dev/null &
}

# Waits until each given node has its broker port open and has logged
# "Kafka Server started" since its launch (log offsets in LOG_OFFSET[i]).
declare -A LOG_OFFSET=()
wait_ready() {
  local c=$1; shift
  local -a pending=("$@")
  local deadline=$((SECONDS + START_TIMEOUT)) i dir pid
  while ((${#pending[@]} > 0)); do
    local -a still=()
    for i in "${pending[@]}"; do
      dir=$(node_dir "$c" "$i")
      if [[ ! -s "$dir/kafka.pid" ]]; then still+=("$i"); continue; fi
      if ! pid=$(node_pid "$c" "$i"); then
        log "node $i of '$c' exited during startup; last lines of $dir/server.log:"
        tail -n 40 "$dir/server.log" | sed 's/^/  | /' >&2
        return 1
      fi
      if port_open "$(broker_port "$i")" \
          && tail -c +"$((${LOG_OFFSET[$i]:-0} + 1))" "$dir/server.log" | grep -q "Kafka Server started"; then
        log "node $i ready on 127.0.0.1:$(broker_port "$i") (pid $pid)"
      else
        still+=("$i")
      fi
    done
    pending=("${still[@]+"${still[@]}"}")
    ((${#pending[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      for i in "${pending[@]}"; do
        dir=$(node_dir "$c" "$i")
        log "node $i of '$c' not ready after ${START_TIMEOUT}s; last lines of $dir/server.log:"
        tail -n 25 "$dir/server.log" | sed 's/^/  | /' >&2
      done
      log "raise KAFKA_START_TIMEOUT if the machine is just slow; stop with: scripts/kafka.sh stop"
      return 1
    fi
    sleep 0.5
  done
}

# Sends TERM to the given nodes, waits up to STOP_TIMEOUT, then KILLs.
stop_nodes() {
  local c=$1; shift
  local -a alive=() pids=()
  local i pid dir
  for i in "$@"; do
    if pid=$(node_pid "$c" "$i"); then
      kill -TERM "$pid" 2>/dev/null || true
      alive+=("$i"); pids+=("$pid")
      log "stopping '$c' node $i (pid $pid)"
    fi
  done
  local deadline=$((SECONDS + STOP_TIMEOUT)) k
  while ((SECONDS < deadline)); do
    local any=0
    for k in "${!pids[@]}"; do
      kill -0 "${pids[$k]}" 2>/dev/null && any=1
    done
    ((any == 0)) && break
    sleep 0.3
  done
  for k in "${!pids[@]}"; do
    if kill -0 "${pids[$k]}" 2>/dev/null; then
      log "'$c' node ${alive[$k]} (pid ${pids[$k]}) still up after ${STOP_TIMEOUT}s: SIGKILL"
      kill -KILL "${pids[$k]}" 2>/dev/null || true
    fi
  done
  for k in "${!pids[@]}"; do
    while kill -0 "${pids[$k]}" 2>/dev/null; do sleep 0.1; done
  done
  for i in "$@"; do
    dir=$(node_dir "$c" "$i")
    rm -f "$dir/kafka.pid"
  done
}

stop_cluster() {
  local c=$1 n i
  [[ -f "$RUN_ROOT/$c/cluster.env" ]] || return 0
  n=$(sed -n 's/^NODES=//p' "$RUN_ROOT/$c/cluster.env")
  local -a all=()
  for ((i = 1; i <= n; i++)); do all+=("$i"); done
  stop_nodes "$c" "${all[@]}"
}

# ---------------------------------------------------------------- commands

cmd_start() {
  local nodes=1 port=""
  while (($#)); do
    case "$1" in
      --nodes) [[ $# -ge 2 ]] || die "--nodes needs a value"; nodes=$2; shift 2 ;;
      --nodes=*) nodes=${1#*=}; shift ;;
      --port) [[ $# -ge 2 ]] || die "--port needs a value"; port=$2; shift 2 ;;
      --port=*) port=${1#*=}; shift ;;
      -h|--help) usage 0 ;;
      *) die "start: unknown argument '$1' (usage: start [--nodes 1|3] [--port P])" ;;
    esac
  done
  local c
  c=$(cluster_name "$nodes")
  if [[ -z "$port" ]]; then
    if ((nodes == 1)); then port=${KAFKA_PORT:-19092}; else port=${KAFKA_PORT:-29092}; fi
  fi
  if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port + 102 > 65535)); then
    die "bad port '$port' (need 1..65433: controllers use port+100..+102)"
  fi

  find_java
  cmd_fetch

  # Fresh start: stop whatever this cluster still runs, wipe its folder.
  stop_cluster "$c"
  NODES=$nodes BASE_PORT=$port CTRL_BASE_PORT=$((port + 100))
  local i p
  for ((i = 1; i <= NODES; i++)); do
    for p in "$(broker_port "$i")" "$(ctrl_port "$i")"; do
      port_open "$p" && die "127.0.0.1:$p is already in use (another Kafka? see scripts/kafka.sh status / stop, or pick --port)"
    done
  done
  rm -rf "${RUN_ROOT:?}/$c"
  mkdir -p "$RUN_ROOT/$c"
  CLUSTER_ID=$(random_cluster_id)
  cat >"$RUN_ROOT/$c/cluster.env" <<EOF
NODES=$NODES
BASE_PORT=$BASE_PORT
CTRL_BASE_PORT=$CTRL_BASE_PORT
CLUSTER_ID=$CLUSTER_ID
EOF

  local t0=$SECONDS
  log "starting '$c': $NODES KRaft node(s), cluster id $CLUSTER_ID, in $RUN_ROOT/$c"
  local -a fpids=()
  for ((i = 1; i <= NODES; i++)); do
    mkdir -p "$(node_dir "$c" "$i")"
    write_properties "$c" "$i"
    format_node "$c" "$i" &
    fpids+=($!)
  done
  local failed=0
  for p in "${fpids[@]}"; do wait "$p" || failed=1; done
  ((failed == 0)) || die "storage format failed (see above)"

  local -a ids=()
  for ((i = 1; i <= NODES; i++)); do
    LOG_OFFSET[$i]=0
    launch_node "$c" "$i"
    ids+=("$i")
  done
  if ! wait_ready "$c" "${ids[@]}"; then
    stop_cluster "$c"
    die "cluster '$c' did not start"
  fi
  log "'$c' up in $((SECONDS - t0))s; bootstrap servers:"
  bootstrap_list
}

nodes_opt() {
  # Parses an optional [--nodes N] (default $1) out of the remaining args.
  local nodes=$1; shift
  while (($#)); do
    case "$1" in
      --nodes) [[ $# -ge 2 ]] || die "--nodes needs a value"; nodes=$2; shift 2 ;;
      --nodes=*) nodes=${1#*=}; shift ;;
      all) nodes=all; shift ;;
      *) die "unknown argument '$1'" ;;
    esac
  done
  echo "$nodes"
}

cmd_stop() {
  local nodes c
  nodes=$(nodes_opt all "$@")
  if [[ "$nodes" == all ]]; then
    [[ -d "$RUN_ROOT" ]] || { log "nothing to stop"; return 0; }
    for c in "$RUN_ROOT"/*/; do
      [[ -d "$c" ]] && stop_cluster "$(basename "$c")"
    done
  else
    stop_cluster "$(cluster_name "$nodes")"
  fi
  log "stopped"
}

parse_node_cmd() {
  # <N> [--nodes 3] -> sets NODE and CL
  [[ $# -ge 1 && "$1" =~ ^[0-9]+$ ]] || die "expected a node number, e.g. stop-node 2"
  NODE=$1; shift
  local nodes
  nodes=$(nodes_opt 3 "$@")
  CL=$(cluster_name "$nodes")
  load_cluster "$CL" "$nodes"
  ((NODE >= 1 && NODE <= NODES)) || die "cluster '$CL' has nodes 1..$NODES, not $NODE"
}

cmd_stop_node() {
  parse_node_cmd "$@"
  if ! node_pid "$CL" "$NODE" >/dev/null; then
    log "'$CL' node $NODE is not running"
    rm -f "$(node_dir "$CL" "$NODE")/kafka.pid"
    return 0
  fi
  stop_nodes "$CL" "$NODE"
  log "'$CL' node $NODE stopped (data kept; scripts/kafka.sh start-node $NODE brings it back)"
}

cmd_kill_node() {
  parse_node_cmd "$@"
  local pid dir
  dir=$(node_dir "$CL" "$NODE")
  if ! pid=$(node_pid "$CL" "$NODE"); then
    log "'$CL' node $NODE is not running"
    rm -f "$dir/kafka.pid"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || die "'$CL' node $NODE (pid $pid) still alive 30s after SIGKILL"
    sleep 0.05
  done
  rm -f "$dir/kafka.pid"
  log "'$CL' node $NODE killed (SIGKILL, pid $pid; data kept; scripts/kafka.sh start-node $NODE brings it back)"
}

cmd_start_node() {
  parse_node_cmd "$@"
  find_java
  libs_ready || die "no Kafka jars in $LIBS_DIR: run scripts/kafka.sh fetch (or start)"
  local dir pid
  dir=$(node_dir "$CL" "$NODE")
  [[ -f "$dir/server.properties" ]] || die "no $dir/server.properties: run scripts/kafka.sh start --nodes $NODES first"
  if pid=$(node_pid "$CL" "$NODE"); then
    log "'$CL' node $NODE already running (pid $pid)"
  else
    local p
    for p in "$(broker_port "$NODE")" "$(ctrl_port "$NODE")"; do
      port_open "$p" && die "127.0.0.1:$p is already in use by another process"
    done
    LOG_OFFSET[$NODE]=$(stat -c %s "$dir/server.log" 2>/dev/null || echo 0)
    local t0=$SECONDS
    launch_node "$CL" "$NODE"
    wait_ready "$CL" "$NODE" || die "'$CL' node $NODE did not come back"
    log "'$CL' node $NODE back in $((SECONDS - t0))s"
  fi
  bootstrap_list
}

cmd_status() {
  local any=0 c name i pid
  if [[ -d "$RUN_ROOT" ]]; then
    for c in "$RUN_ROOT"/*/; do
      name=$(basename "$c")
      [[ -f "$c/cluster.env" ]] || continue
      # shellcheck disable=SC1091
      source "$c/cluster.env"
      for ((i = 1; i <= NODES; i++)); do
        if pid=$(node_pid "$name" "$i"); then
          echo "$name node $i: running pid $pid broker 127.0.0.1:$(broker_port "$i") controller 127.0.0.1:$(ctrl_port "$i")"
          any=1
        else
          echo "$name node $i: stopped (broker 127.0.0.1:$(broker_port "$i"))"
        fi
      done
    done
  fi
  ((any == 1)) || echo "no Kafka node running"
}

cmd_bootstrap() {
  local nodes c
  nodes=$(nodes_opt 1 "$@")
  c=$(cluster_name "$nodes")
  load_cluster "$c" "$nodes"
  bootstrap_list
}

main() {
  (($#)) || usage 2
  local cmd=$1; shift
  case "$cmd" in
    fetch) cmd_fetch ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    stop-node) cmd_stop_node "$@" ;;
    kill-node) cmd_kill_node "$@" ;;
    start-node) cmd_start_node "$@" ;;
    status) cmd_status ;;
    bootstrap) cmd_bootstrap "$@" ;;
    -h|--help|help) usage 0 ;;
    *) log "unknown command '$cmd'"; usage 2 ;;
  esac
}

main "$@"
