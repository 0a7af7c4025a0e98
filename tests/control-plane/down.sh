#!/usr/bin/env bash
# Stops the control plane started by up.sh, by its recorded PIDs only (TERM,
# wait, then KILL). A no-op when nothing runs. Keeps logs and etcd data for
# inspection; the next up.sh starts from scratch anyway.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/target/control-plane/bin"
run="$root/target/control-plane/run"
kubeconfig="$run/kubeconfig"

[[ -d "$run" ]] || exit 0
exec 9>"$run/.lock"
flock 9

source "$here/lib.sh"
if any_pid_file; then
  stop_all
  echo "control plane: stopped" >&2
fi
