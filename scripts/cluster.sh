#!/usr/bin/env bash
# The topicgate cluster rig on one machine (docs/cluster.md): a three-node
# RabbitMQ cluster, three gateways and HAProxy in front of them, beside (and
# never touching) a RabbitMQ already serving on 5672.
#
#   scripts/cluster.sh start              everything; prints where it listens
#   scripts/cluster.sh stop               everything, data deleted; nothing left running
#   scripts/cluster.sh status             what runs, cluster membership, readiness
#   scripts/cluster.sh kill-node N        SIGKILL RabbitMQ node N (1-3), as a crash would
#   scripts/cluster.sh start-node N       start node N again; it rejoins the cluster
#   scripts/cluster.sh kill-gateway N     SIGKILL gateway N
#   scripts/cluster.sh start-gateway N    start gateway N again, wait for /readyz
#   scripts/cluster.sh restart-gateway N  one step of a rolling restart: take it out of
#                                         HAProxy, SIGTERM, start again, wait for /readyz,
#                                         put it back
#   scripts/cluster.sh ctl N ARGS…        rabbitmqctl against node N (always with -n)
#
#              clients ──▶ HAProxy 127.0.0.1:8180 (cookie tg_gw, ops/cluster/haproxy.cfg)
#                              │            │            │
#                         gw1 :8181    gw2 :8182    gw3 :8183   (node server/dist/cli.js serve)
#                      AMQP 1,2,3     2,3,1        3,1,2        (TOPICGATE_AMQP_URL, in turn)
#                              │            │            │
#                     tgc1@localhost  tgc2@localhost  tgc3@localhost
#                         AMQP 5681      5682          5683
#                         dist 25681     25682         25683   (no management plugin)
#
# Needs root (RabbitMQ's nodes run as the `rabbitmq` user), Debian's
# rabbitmq-server and haproxy, and the gateway built (`npx tsc -b`).
#
# Settings, from the environment of `start`:
#   TOPICGATE_CLUSTER_DIR  state: node data, logs, pid files (default /tmp/topicgate-cluster)
#   TOPICGATE_*            passed to every gateway (e.g. TOPICGATE_RESUME_WINDOW=60,
#                          TOPICGATE_EXCHANGE), saved so that start-gateway uses the same;
#                          port, host, gateway id, AMQP URL and metrics port are the rig's.
#                          Without TOPICGATE_JWT_SECRET (or another key) one is made and
#                          kept in $TOPICGATE_CLUSTER_DIR/jwt-secret.
#
# The nodes share the machine's Erlang cookie (/var/lib/rabbitmq/.erlang.cookie,
# they run as `rabbitmq` with that HOME), so plain `rabbitmqctl -n tgc1@localhost …`
# as root reaches them. Every rabbitmqctl here names its node with -n: nothing
# in this script addresses the machine's own node (rabbit@localhost).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${TOPICGATE_CLUSTER_DIR:-/tmp/topicgate-cluster}
export TOPICGATE_CLUSTER_DIR=$DIR
CONF_TEMPLATE=$ROOT/ops/cluster/rabbitmq-node.conf.template
HAPROXY_CFG=$ROOT/ops/cluster/haproxy.cfg
CLI=$ROOT/server/dist/cli.js
NODES=(1 2 3)
HAPROXY_PORT=8180
RABBITMQ_BIN=/usr/lib/rabbitmq/bin
RABBITMQ_HOME_DIR=/var/lib/rabbitmq   # the rabbitmq user's HOME: its .erlang.cookie is the shared cookie

node_name() { echo "tgc$1@localhost"; }
amqp_port() { echo $((5680 + $1)); }
dist_port() { echo $((25680 + $1)); }
gateway_port() { echo $((8180 + $1)); }
metrics_port() { echo $((9480 + $1)); }
amqp_url() { echo "amqp://guest:guest@127.0.0.1:$(amqp_port "$1")"; }
node_dir() { echo "$DIR/tgc$1"; }

say() { printf 'cluster: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

check_index() {
  case "${1:-}" in 1 | 2 | 3) ;; *) fail "expected a number 1-3, got '${1:-}'" ;; esac
}

# rabbitmqctl against one rig node, never without -n.
ctl() {
  local n=$1
  shift
  check_index "$n"
  rabbitmqctl -n "$(node_name "$n")" "$@"
}

# The pid in a pid file, if that process is alive.
live_pid() {
  local file=$1 pid
  [ -s "$file" ] || return 1
  pid=$(tr -dc '0-9' <"$file")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# Polls a command until it succeeds, at most $1 seconds.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "timed out after ${seconds}s waiting for $what"
    sleep 0.2
  done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------------------
# RabbitMQ nodes

# Runs a RabbitMQ script as the rabbitmq user with node N's environment.
as_node() {
  local n=$1 d
  shift
  d=$(node_dir "$n")
  runuser -u rabbitmq -- env \
    HOME="$RABBITMQ_HOME_DIR" \
    RABBITMQ_NODENAME="$(node_name "$n")" \
    RABBITMQ_NODE_PORT="$(amqp_port "$n")" \
    RABBITMQ_DIST_PORT="$(dist_port "$n")" \
    RABBITMQ_CONF_ENV_FILE="$d/rabbitmq-env.conf" \
    RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
    RABBITMQ_MNESIA_BASE="$d/mnesia" \
    RABBITMQ_LOG_BASE="$d/log" \
    RABBITMQ_PID_FILE="$d/pid" \
    "$@"
}

prepare_node() {
  local n=$1 d
  d=$(node_dir "$n")
  install -d -o rabbitmq -g rabbitmq -m 750 "$d" "$d/mnesia" "$d/log"
  sed -e "s/@AMQP_PORT@/$(amqp_port "$n")/g" "$CONF_TEMPLATE" >"$d/rabbitmq.conf"
  echo '[].' >"$d/enabled_plugins"   # no plugins: rabbitmqctl -n is how the rig is inspected
  # Instead of /etc/rabbitmq/rabbitmq-env.conf, which names the machine's node.
  cat >"$d/rabbitmq-env.conf" <<EOF
ERL_EPMD_ADDRESS=127.0.0.1
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
EOF
  chown rabbitmq:rabbitmq "$d/rabbitmq.conf" "$d/enabled_plugins" "$d/rabbitmq-env.conf"
}

start_node_process() {
  local n=$1
  if live_pid "$(node_dir "$n")/pid" >/dev/null; then fail "node $(node_name "$n") is already running"; fi
  port_free "$(amqp_port "$n")" || fail "port $(amqp_port "$n") is taken"
  port_free "$(dist_port "$n")" || fail "port $(dist_port "$n") is taken"
  as_node "$n" "$RABBITMQ_BIN/rabbitmq-server" -detached
}

# `wait` follows the pid file, then waits for the app to start.
await_node() {
  local n=$1
  ctl "$n" -q wait "$(node_dir "$n")/pid" --timeout 120 >/dev/null ||
    fail "node $(node_name "$n") did not start within 120 s; see $(node_dir "$n")/log"
}

# Nodes 2 and 3 join node 1: stop their apps (in parallel), join one at a time
# (each join changes the cluster's schema), start their apps (in parallel).
join_nodes() {
  local n
  for n in 2 3; do ctl "$n" -q stop_app & done
  wait_all || fail "stop_app failed"
  for n in 2 3; do ctl "$n" -q join_cluster "$(node_name 1)" || fail "node $(node_name "$n") could not join $(node_name 1)"; done
  for n in 2 3; do ctl "$n" -q start_app & done
  wait_all || fail "start_app failed"
}

kill_node() {
  local n=$1 pid children
  pid=$(live_pid "$(node_dir "$n")/pid") || fail "node $(node_name "$n") is not running"
  children=$(ps -o pid= --ppid "$pid" | tr '\n' ' ')
  # shellcheck disable=SC2086 # a list of pids
  kill -KILL "$pid" $children 2>/dev/null || true
  wait_for 10 "node $(node_name "$n") (pid $pid) to die" bash -c "! kill -0 $pid"
  say "killed node $(node_name "$n") (pid $pid${children:+, children $children})"
}

stop_node() {
  local n=$1 pid
  pid=$(live_pid "$(node_dir "$n")/pid") || return 0
  ctl "$n" -q stop --idempotent >/dev/null 2>&1 || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    say "node $(node_name "$n") did not stop within 30 s; killing it"
    kill -KILL "$pid" $(ps -o pid= --ppid "$pid") 2>/dev/null || true
  fi
}

# ---------------------------------------------------------------------------
# Gateways

# Node URLs starting at node N: gw1 gets 1,2,3, gw2 gets 2,3,1, gw3 gets 3,1,2.
gateway_urls() {
  local n=$1 urls=() i
  for i in 0 1 2; do urls+=("$(amqp_url $(((n - 1 + i) % 3 + 1)))"); done
  (IFS=,; echo "${urls[*]}")
}

save_gateway_env() {
  local name
  : >"$DIR/gateway.env"
  while IFS= read -r name; do
    case "$name" in
      TOPICGATE_PORT | TOPICGATE_HOST | TOPICGATE_AMQP_URL | TOPICGATE_GATEWAY_ID | TOPICGATE_METRICS_PORT | TOPICGATE_CLUSTER_*) ;;
      TOPICGATE_*) printf 'export %s=%q\n' "$name" "${!name}" >>"$DIR/gateway.env" ;;
    esac
  done < <(compgen -e)
  if [ -z "${TOPICGATE_JWT_SECRET:-}${TOPICGATE_JWT_PUBLIC_KEY:-}${TOPICGATE_JWT_JWKS_URL:-}${TOPICGATE_INSECURE_NO_AUTH:-}" ]; then
    (umask 077; openssl rand -hex 32 >"$DIR/jwt-secret")
    printf 'export TOPICGATE_JWT_SECRET=%q\n' "$(cat "$DIR/jwt-secret")" >>"$DIR/gateway.env"
  fi
  chmod 600 "$DIR/gateway.env"
}

gateway_ready() { curl -fsS -o /dev/null "http://127.0.0.1:$(gateway_port "$1")/readyz"; }

start_gateway() {
  local n=$1
  if live_pid "$DIR/gw$n.pid" >/dev/null; then fail "gateway gw$n is already running"; fi
  port_free "$(gateway_port "$n")" || fail "port $(gateway_port "$n") is taken"
  (
    # shellcheck disable=SC1091
    source "$DIR/gateway.env"
    export TOPICGATE_PORT=$(gateway_port "$n") TOPICGATE_HOST=127.0.0.1 TOPICGATE_GATEWAY_ID=gw$n \
      TOPICGATE_METRICS_PORT=$(metrics_port "$n") TOPICGATE_AMQP_URL=$(gateway_urls "$n")
    cd "$ROOT"
    setsid nohup node "$CLI" serve </dev/null >>"$DIR/gw$n.log" 2>&1 &
    echo $! >"$DIR/gw$n.pid"
  )
}

await_gateway() {
  local n=$1 pid
  local deadline=$((SECONDS + 30))
  until gateway_ready "$n" 2>/dev/null; do
    pid=$(live_pid "$DIR/gw$n.pid") || fail "gateway gw$n exited; see $DIR/gw$n.log"
    [ $SECONDS -lt $deadline ] || fail "gateway gw$n (pid $pid) not ready within 30 s; see $DIR/gw$n.log"
    sleep 0.1
  done
}

# SIGTERM and wait: the gateway tells its clients `shutdown`, deletes its queues and exits.
stop_gateway() {
  local n=$1 pid
  pid=$(live_pid "$DIR/gw$n.pid") || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "gateway gw$n did not exit within 15 s of SIGTERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$DIR/gw$n.pid"
}

kill_gateway() {
  local n=$1 pid
  pid=$(live_pid "$DIR/gw$n.pid") || fail "gateway gw$n is not running"
  kill -KILL "$pid"
  wait_for 10 "gateway gw$n (pid $pid) to die" bash -c "! kill -0 $pid"
  rm -f "$DIR/gw$n.pid"
  say "killed gateway gw$n (pid $pid)"
}

# ---------------------------------------------------------------------------
# HAProxy

haproxy_cmd() {
  # The runtime API on the stats socket (haproxy.cfg `stats socket`).
  printf '%s\n' "$1" | socat stdio "UNIX-CONNECT:$DIR/haproxy.sock" 2>/dev/null ||
    printf '%s\n' "$1" | python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
s.shutdown(socket.SHUT_WR); sys.stdout.buffer.write(s.makefile("rb").read())' "$DIR/haproxy.sock"
}

start_haproxy() {
  port_free "$HAPROXY_PORT" || fail "port $HAPROXY_PORT is taken"
  haproxy -c -q -f "$HAPROXY_CFG" || fail "$HAPROXY_CFG is not valid"
  haproxy -D -p "$DIR/haproxy.pid" -f "$HAPROXY_CFG"
}

stop_haproxy() {
  local pid
  for pid in $(cat "$DIR/haproxy.pid" 2>/dev/null); do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $(cat "$DIR/haproxy.pid" 2>/dev/null); do
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -f "$DIR/haproxy.pid"
}

# ---------------------------------------------------------------------------
# Commands

cmd_start() {
  [ "$(id -u)" = 0 ] || fail "run as root (the nodes run as the rabbitmq user)"
  command -v haproxy >/dev/null || fail "haproxy is not installed: apt-get install -y haproxy"
  [ -x "$RABBITMQ_BIN/rabbitmq-server" ] || fail "rabbitmq-server is not installed: apt-get install -y rabbitmq-server"
  [ -f "$CLI" ] || fail "$CLI is missing: build first (npx tsc -b)"
  [ -f "$RABBITMQ_HOME_DIR/.erlang.cookie" ] || fail "no Erlang cookie at $RABBITMQ_HOME_DIR/.erlang.cookie (start the machine's RabbitMQ once)"
  if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR" 2>/dev/null)" ]; then fail "$DIR exists: a rig is running or was not stopped (scripts/cluster.sh stop)"; fi
  install -d -m 755 "$DIR"
  local started=$SECONDS n

  # 1. Three nodes, booted in parallel, each standalone at first.
  for n in "${NODES[@]}"; do prepare_node "$n"; done
  for n in "${NODES[@]}"; do start_node_process "$n"; done
  for n in "${NODES[@]}"; do await_node "$n" & done
  wait_all || fail "a node did not start"
  # 2. Nodes 2 and 3 join node 1.
  join_nodes
  say "RabbitMQ cluster of $(node_name 1), $(node_name 2), $(node_name 3) up after $((SECONDS - started)) s"

  # 3. Gateways, then HAProxy in front of them.
  save_gateway_env
  for n in "${NODES[@]}"; do start_gateway "$n"; done
  for n in "${NODES[@]}"; do await_gateway "$n"; done
  start_haproxy
  wait_for 10 "HAProxy on :$HAPROXY_PORT" curl -fsS -o /dev/null "http://127.0.0.1:$HAPROXY_PORT/readyz"
  say "up in $((SECONDS - started)) s: clients http://127.0.0.1:$HAPROXY_PORT; gateways :8181 :8182 :8183; nodes amqp :5681 :5682 :5683; state in $DIR"
}

# Waits for every background job; fails if one failed.
wait_all() {
  local status=0 job
  for job in $(jobs -p); do wait "$job" || status=1; done
  return $status
}

cmd_stop() {
  local n
  [ -d "$DIR" ] || { say "nothing to stop ($DIR does not exist)"; return 0; }
  for n in "${NODES[@]}"; do stop_gateway "$n" & done
  wait_all || true
  stop_haproxy
  for n in "${NODES[@]}"; do stop_node "$n" & done
  wait_all || true
  # Anything of the rig that no pid file named (a start that failed half-way): by pid, TERM, then KILL.
  local left pid
  left=$(leftovers)
  if [ -n "$left" ]; then
    say "stopping what no pid file named: $left"
    for pid in $(leftover_pids); do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 2
    for pid in $(leftover_pids); do kill -KILL "$pid" 2>/dev/null || true; done
    sleep 0.5
  fi
  left=$(leftovers)
  [ -z "$left" ] || fail "still running after stop: $left"
  # Keep the logs of this run (gateways' JSON lines, nodes' logs) for a look afterwards; drop the data.
  rm -rf "$DIR.last-logs"
  mkdir -p "$DIR.last-logs"
  for n in "${NODES[@]}"; do
    if [ -f "$DIR/gw$n.log" ]; then mv "$DIR/gw$n.log" "$DIR.last-logs/"; fi
    if [ -d "$(node_dir "$n")/log" ]; then mv "$(node_dir "$n")/log" "$DIR.last-logs/tgc$n"; fi
  done
  rm -rf "$DIR"
  say "stopped; $DIR removed (logs of this run in $DIR.last-logs)"
}

# Processes this rig started that are still alive, as "pid(command) …". Everything
# the script starts inherits TOPICGATE_CLUSTER_DIR, and a RabbitMQ 3.10 node's
# command line does not name the node, so the environment tells them apart
# from the machine's own node and from other gateways.
leftover_pids() {
  local pid
  for pid in $(pgrep -f 'beam.smp|erl_child_setup|inet_gethost|haproxy|cli.js serve'); do
    [ "$pid" != $$ ] || continue
    if { tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null | grep -qxF "TOPICGATE_CLUSTER_DIR=$DIR"; then echo "$pid"; fi
  done
}

leftovers() {
  local pid
  for pid in $(leftover_pids); do printf '%s(%s) ' "$pid" "$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | cut -c1-60)"; done
}

cmd_status() {
  local n
  [ -d "$DIR" ] || { echo "not running"; return 0; }
  for n in "${NODES[@]}"; do
    if live_pid "$(node_dir "$n")/pid" >/dev/null && ctl "$n" -q ping >/dev/null 2>&1; then
      echo "node $(node_name "$n"): running, cluster $(ctl "$n" -q cluster_status --formatter json | python3 -c 'import json,sys; print(",".join(json.load(sys.stdin)["running_nodes"]))')"
    else
      echo "node $(node_name "$n"): down"
    fi
  done
  for n in "${NODES[@]}"; do
    if live_pid "$DIR/gw$n.pid" >/dev/null; then
      echo "gateway gw$n :$(gateway_port "$n"): running, $(gateway_ready "$n" 2>/dev/null && echo ready || echo unready)"
    else
      echo "gateway gw$n: down"
    fi
  done
  if [ -n "$(for p in $(cat "$DIR/haproxy.pid" 2>/dev/null); do kill -0 "$p" 2>/dev/null && echo "$p"; done)" ]; then
    echo "haproxy :$HAPROXY_PORT: running"
    haproxy_cmd 'show servers state gateways' | awk 'NR > 2 && NF > 5 { printf "  %s operational=%s admin=%s\n", $4, $6, $7 }'
  else
    echo "haproxy: down"
  fi
}

cmd_restart_gateway() {
  local n=$1
  haproxy_cmd "disable server gateways/gw$n" >/dev/null
  stop_gateway "$n"
  start_gateway "$n"
  await_gateway "$n"
  haproxy_cmd "enable server gateways/gw$n" >/dev/null
  # Back in rotation once HAProxy's own check has seen it ready.
  wait_for 10 "HAProxy to see gw$n up" bash -c "'$0' haproxy-state $n | grep -q '^2 0\$'"
  say "gateway gw$n restarted"
}

main() {
  local command=${1:-}
  shift || true
  case "$command" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    kill-node) check_index "${1:-}" && kill_node "$1" ;;
    start-node) check_index "${1:-}" && start_node_process "$1" && await_node "$1" && ctl "$1" -q await_startup --timeout 120 && say "node $(node_name "$1") running" ;;
    kill-gateway) check_index "${1:-}" && kill_gateway "$1" ;;
    start-gateway) check_index "${1:-}" && start_gateway "$1" && await_gateway "$1" ;;
    restart-gateway) check_index "${1:-}" && cmd_restart_gateway "$1" ;;
    ctl) ctl "$@" ;;
    # HAProxy's view of gateway N: "<operational state> <admin state>" (2 0: up, in rotation).
    haproxy-state) check_index "${1:-}" && haproxy_cmd 'show servers state gateways' | awk -v s="gw$1" '$4 == s { print $6, $7 }' ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
}

main "$@"
