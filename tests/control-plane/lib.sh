# shellcheck shell=bash
# Shared by up.sh, down.sh and dev.sh (sourced): the paths they use and the
# process helpers.
# Processes are only ever identified by the PIDs recorded in $run/*.pid, and a
# recorded PID counts only while it still runs the binary it was started as
# (guards against PID reuse after a reboot or a crash).

# shellcheck disable=SC2034 # each script uses its own subset
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/target/control-plane/bin"
run="$root/target/control-plane/run"
kubeconfig="$run/kubeconfig"

components=(etcd kube-apiserver kube-controller-manager)

kctl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }

# Prints the PID recorded for <name> if that process is alive and is ours.
live_pid() { # <name>
  local pid exe
  [[ -f "$run/$1.pid" ]] || return 1
  pid="$(cat "$run/$1.pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  exe="$(tr '\0' '\n' <"/proc/$pid/cmdline" | head -n 1)"
  [[ "$exe" == "$bin/$1" ]] || return 1
  echo "$pid"
}

all_alive() {
  local c
  for c in "${components[@]}"; do
    live_pid "$c" >/dev/null || return 1
  done
}

any_pid_file() {
  local c
  for c in "${components[@]}"; do
    [[ -f "$run/$c.pid" ]] && return 0
  done
  return 1
}

readyz() {
  [[ -f "$kubeconfig" ]] || return 1
  [[ "$(kctl get --raw /readyz --request-timeout=2s 2>/dev/null)" == "ok" ]]
}

# TERM in dependency order (controller manager, apiserver, etcd), wait up to
# 10 s each, then KILL; removes the pid files.
stop_all() {
  local c pid i
  for c in kube-controller-manager kube-apiserver etcd; do
    if pid="$(live_pid "$c")"; then
      kill -TERM "$pid" 2>/dev/null || true
      for ((i = 0; i < 100; i++)); do
        live_pid "$c" >/dev/null || break
        sleep 0.1
      done
      if live_pid "$c" >/dev/null; then
        echo "control plane: $c ($pid) ignored TERM; killing" >&2
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
          live_pid "$c" >/dev/null || break
          sleep 0.1
        done
      fi
      echo "control plane: stopped $c ($pid)" >&2
    fi
    rm -f "$run/$c.pid"
  done
}
