#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Fault injection for the tests: restarts one component of the running
# control plane with the very command line it was started with.
#   restart.sh <etcd|kube-apiserver|kube-controller-manager> [seconds down]
#   restart.sh compact      compact etcd to its current revision, so that
#                           watches resuming from an older one get 410 Gone
# Processes are found by their recorded PIDs only (see lib.sh).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

component="${1:?usage: restart.sh <component> [seconds down] | compact}"
down="${2:-0}"

if [[ "$component" == compact ]]; then
  # shellcheck source=/dev/null
  source "$run/endpoints.env"
  url="${GSO_ETCD:?endpoints.env has no GSO_ETCD}/v3/kv"
  revision="$(curl -fsS -X POST "$url/range" -d '{"key": "AA=="}' |
    sed -n 's/.*"revision":"\([0-9]*\)".*/\1/p')"
  curl -fsS -X POST "$url/compaction" -d "{\"revision\": \"$revision\", \"physical\": true}" >/dev/null
  echo "etcd compacted at revision $revision" >&2
  exit 0
fi

pid="$(live_pid "$component")" || {
  echo "restart: $component is not running" >&2
  exit 1
}
mapfile -d '' cmdline <"/proc/$pid/cmdline"
kill -TERM "$pid"
for ((i = 0; i < 100; i++)); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -KILL "$pid" 2>/dev/null || true
sleep "$down"
setsid "${cmdline[@]}" </dev/null >>"$run/$component.log" 2>&1 9>&- &
echo $! >"$run/$component.pid"
echo "restarted $component (down ${down}s)" >&2
