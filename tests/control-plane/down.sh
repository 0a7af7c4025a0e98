#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Stops the operator started by dev.sh (`make dev`), then the control plane
# started by up.sh, by their recorded PIDs only (TERM, wait, then KILL). A
# no-op when nothing runs. Keeps logs and etcd data for inspection; the next
# up.sh starts from scratch anyway.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -d "$run" ]] || exit 0
exec 9>"$run/.lock"
flock 9

# The operator `make dev` started, first: it talks to the apiserver.
"$here/dev.sh" stop
if any_pid_file; then
  stop_all
  echo "control plane: stopped" >&2
fi
