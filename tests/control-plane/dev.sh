#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The local development loop behind `make dev`, and the dev operator's
# start/stop.
#
#   dev.sh up     install the CRD, the tenant namespace and the example
#                 resource groups; (re)start the operator; apply
#                 deploy/examples/; wait until the tenant-wide example is
#                 replicated into every resource group and all examples are
#                 Ready; print what to try next
#   dev.sh start  (re)start the operator only
#   dev.sh stop   stop the operator; a no-op when none runs
#
# `up` and `start` expect a running control plane (up.sh) and a built
# target/debug/generic-secrets-operator (`make dev` does both first).
#
# The operator runs in the background with the admin kubeconfig, tenant
# namespace aicore-system, text logs in target/control-plane/run/operator.log
# and its PID in target/control-plane/run/operator.pid. It is only ever
# stopped by that PID, and only while the PID still runs this repository's
# target/debug binary (PID reuse).
#
# It leaves alone every namespace labelled gso-test: those belong to the
# integration tests, which start an operator of their own per test. So
# `make test` can run while the dev operator does (same control plane).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

operator="$root/target/debug/generic-secrets-operator"
# /healthz, /readyz and /metrics of the dev operator, on loopback only.
http_port="${GSO_DEV_HTTP_PORT:-8080}"
pid_file="$run/operator.pid"
log_file="$run/operator.log"
tenant_namespace=aicore-system
namespace_selector='!gso-test'
timeout="${GSO_DEV_TIMEOUT:-60}"


log() { echo "dev: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# Prints the dev operator's PID if it is alive and is our binary.
operator_pid() {
  local pid exe
  [[ -f "$pid_file" ]] || return 1
  pid="$(<"$pid_file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  # argv[0]; empty (read fails) for a zombie or a vanished process.
  IFS= read -r -d '' exe <"/proc/$pid/cmdline" 2>/dev/null || return 1
  [[ "$exe" == "$operator" ]] || return 1
  echo "$pid"
}

# TERM, wait up to 10 s, then KILL.
stop_operator() {
  local pid i
  if pid="$(operator_pid)"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      operator_pid >/dev/null || break
      sleep 0.1
    done
    if operator_pid >/dev/null; then
      log "operator ($pid) ignored TERM; killing"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do
        operator_pid >/dev/null || break
        sleep 0.1
      done
    fi
    log "stopped operator ($pid)"
  fi
  rm -f "$pid_file"
}

tail_log() {
  if [[ -f "$log_file" ]]; then
    echo "----- tail of $log_file -----" >&2
    tail -n 40 "$log_file" >&2
  fi
}

start_operator() {
  [[ -x "$operator" ]] || die "$operator is missing; run: cargo build --locked"
  readyz || die "the control plane is not running; run: make up"
  stop_operator
  mkdir -p "$run"
  # Own session, stdio on files, fd 9 (up.sh's lock, if inherited) closed:
  # the operator outlives this script and holds nothing of its caller's.
  # NO_COLOR: plain text in the log file.
  KUBECONFIG="$kubeconfig" NO_COLOR=1 setsid "$operator" run \
    --tenant-namespace "$tenant_namespace" \
    --namespace-selector "$namespace_selector" \
    --log-format text \
    --http-addr "127.0.0.1:$http_port" \
    </dev/null >"$log_file" 2>&1 9>&- &
  echo $! >"$pid_file"
  sleep 0.5
  local pid
  pid="$(operator_pid)" || {
    tail_log
    rm -f "$pid_file"
    die "the operator exited right after start"
  }
  log "operator running (pid $pid, log $log_file)"
}

# "True" when every example GenericSecret reports Ready=True.
examples_ready() {
  local ref status
  for ref in aicore-system/object-store-creds aicore-system/main-tenant-secret team-a/team-a-token; do
    status="$(kctl get gsec -n "${ref%/*}" "${ref#*/}" \
      -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" || return 1
    [[ "$status" == "True" ]] || return 1
  done
}

cmd_up() {
  readyz || die "the control plane is not running; run: make up"
  cd "$root"

  log "installing the GenericSecret CRD"
  kctl apply --server-side --force-conflicts -f crds/genericsecret.yaml >/dev/null
  kctl wait --for=condition=Established crd/genericsecrets.aicore.dev --timeout=60s >/dev/null
  kctl apply -f deploy/namespace.yaml -f deploy/examples/resource-groups.yaml >&2

  start_operator

  kctl apply -f deploy/examples/ >&2

  # Every resource group this operator sees: 2 (team-a, team-b) unless more
  # were labelled since.
  local groups want got=""
  groups="$(kctl get namespaces -l "aicore.dev/resource-group,$namespace_selector" -o name | wc -l)"
  want="$groups/$groups"
  log "waiting for object-store-creds to reach $want (deadline ${timeout}s)"
  local deadline=$(($(date +%s) + timeout))
  while :; do
    got="$(kctl get gsec -n "$tenant_namespace" object-store-creds \
      -o jsonpath='{.status.replicated}' 2>/dev/null || true)"
    if [[ "$got" == "$want" ]] && examples_ready; then
      break
    fi
    if ! operator_pid >/dev/null; then
      tail_log
      die "the operator exited"
    fi
    if (($(date +%s) >= deadline)); then
      kctl get gsec -A >&2 || true
      tail_log
      die "object-store-creds replicated '${got:-<none>}', want $want, or an example is not Ready after ${timeout}s"
    fi
    sleep 0.5
  done

  local rel_kubeconfig="${kubeconfig#"$root"/}"
  echo
  echo "\$ kubectl --kubeconfig $rel_kubeconfig get gsec -A"
  kctl get gsec -A
  cat <<EOF

The operator runs in the background (pid $(operator_pid), log ${log_file#"$root"/}).
Kubeconfig (admin): $kubeconfig

Try this (kubectl is built into target/control-plane/bin):
  export PATH="$bin:\$PATH" KUBECONFIG="$kubeconfig"
  kubectl get secret -n team-b object-store-creds -o jsonpath='{.data.some-credential}' | base64 -d; echo
  kubectl create namespace team-c && kubectl label namespace team-c aicore.dev/resource-group=rg-c
  kubectl get gsec -n aicore-system object-store-creds -o jsonpath='{.status.resourceGroupSecretReplicationStatus}'; echo
  kubectl describe gsec -n team-a team-a-token
  curl -s 127.0.0.1:$http_port/metrics | grep '^generic_secrets_operator'
  tail -f ${log_file#"$root"/}

Stop: make down (operator and control plane), or ${here#"$root"/}/dev.sh stop (operator only).
EOF
}

case "${1:-}" in
  up) cmd_up ;;
  start) start_operator ;;
  stop) stop_operator ;;
  *)
    echo "usage: $0 up|start|stop" >&2
    exit 2
    ;;
esac
