#!/usr/bin/env bash
# What `npm test` needs besides `npm ci`, installed or started if missing, so
# the README's test command works on a fresh machine (Debian, as root):
#   - RabbitMQ answering on this host (started with `rabbitmq-server -detached`
#     if it is down, its app started if it was stopped);
#   - Debian's Chromium for the browser suite (Playwright drives it; its own
#     browser download does not work here);
#   - Debian's docker-compose, to validate docker-compose.yml without an engine;
#   - python3 with pika and kombu, for the "publishing from other languages" examples;
#   - haproxy, nginx and promtool (Debian's prometheus), to check and run the ops configs.
# Anything it cannot provide, it names, with the command to run, and fails.
set -euo pipefail

say() { printf 'test prerequisites: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

missing_packages=()
command -v chromium >/dev/null 2>&1 || [ -n "${TOPICGATE_E2E_CHROMIUM:-}" ] || missing_packages+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing_packages+=(docker-compose)
python3 -c 'import pika' >/dev/null 2>&1 || missing_packages+=(python3-pika)
python3 -c 'import kombu' >/dev/null 2>&1 || missing_packages+=(python3-kombu)
command -v haproxy >/dev/null 2>&1 || missing_packages+=(haproxy) # the cluster rig (scripts/cluster.sh) puts HAProxy in front of its gateways
command -v nginx >/dev/null 2>&1 || missing_packages+=(nginx) # e2e/nginx-config.test.ts checks ops/cluster/nginx.conf with it and runs a private nginx on a free port
command -v promtool >/dev/null 2>&1 || missing_packages+=(prometheus) # promtool checks ops/prometheus/topicgate-alerts.yml (server/test/ops-dashboards.test.ts); installing it starts no Prometheus server here
if [ ${#missing_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing_packages[*]} (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_packages[@]}" >/dev/null
  else
    fail "missing ${missing_packages[*]}: install them (sudo apt-get install -y ${missing_packages[*]}) and run again"
  fi
fi

# A test run against another broker (TOPICGATE_TEST_AMQP_URL) manages that broker itself.
if [ -n "${TOPICGATE_TEST_AMQP_URL:-}" ]; then exit 0; fi
command -v rabbitmqctl >/dev/null 2>&1 || fail "RabbitMQ is not installed: sudo apt-get install -y rabbitmq-server (the suite needs a real broker on 127.0.0.1:5672, guest/guest)"
# `ping` answers for the Erlang node even when its app is stopped; `status` does not.
if ! rabbitmqctl -q ping >/dev/null 2>&1; then
  say "RabbitMQ is not running; starting it"
  rabbitmq-server -detached
  # -detached returns before the node registers with epmd, and until it has,
  # every rabbitmqctl command (await_startup included) fails at once.
  for _ in $(seq 1 120); do
    rabbitmqctl -q ping >/dev/null 2>&1 && break
    sleep 1
  done
fi
# A node whose app was stopped (stop_app, e.g. by an interrupted test) serves nothing.
rabbitmqctl -q start_app >/dev/null
rabbitmqctl -q await_startup --timeout 120 || fail "RabbitMQ did not start within 120 s; see /var/log/rabbitmq/"
