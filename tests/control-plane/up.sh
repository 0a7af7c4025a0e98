#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Starts a loopback Kubernetes control plane for the tests: etcd,
# kube-apiserver and kube-controller-manager (namespace deletion, garbage
# collection, service accounts). No scheduler, no kubelet.
#
# State lives in target/control-plane/run/:
#   kubeconfig            admin (system:masters), token auth
#   kubeconfig-developer  user "developer", only system:authenticated
#   *.pid *.log           one per process
#   endpoints.env         the ports in use
#
# Idempotent: when the recorded processes are alive and /readyz answers, the
# running control plane is reused. Otherwise whatever is left of it is stopped
# (by recorded PIDs only) and a fresh one is started on free ports with an
# empty etcd. Prints the admin kubeconfig path on the last line of stdout.
# GSO_APISERVER_PROFILING=true serves /debug/pprof on the apiserver (for
# finding where its CPU goes during a benchmark). Namespaces are deleted 50
# at a time (default 10): the suite deletes a hundred at once, and a test
# waiting for one namespace must not wait for all the others.
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ready_timeout="${GSO_CONTROL_PLANE_TIMEOUT:-60}"

log() { echo "control plane: $*" >&2; }

"$here/build.sh" >&2

mkdir -p "$run"
# One up/down at a time (make test and a test binary may race). The lock fd is
# closed for the started processes, which would otherwise hold it forever.
exec 9>"$run/.lock"
flock 9


# --- reuse a healthy instance ----------------------------------------------
if [[ -f "$kubeconfig" ]] && all_alive && readyz; then
  log "reusing running control plane ($(grep -o 'https://[^ ]*' "$kubeconfig" | head -1))"
  echo "$kubeconfig"
  exit 0
fi

if any_pid_file; then
  log "previous control plane is stale or partly dead; stopping what is left"
  stop_all
fi

# --- fresh start -------------------------------------------------------------
start_ms=$(date +%s%3N)
rm -rf "$run/etcd-data" "$run/pki" "$run/apiserver-certs"
rm -f "$kubeconfig" "$run/kubeconfig-developer" "$run/kubeconfig-controller-manager" \
  "$run/endpoints.env" "$run"/*.log
mkdir -p "$run/pki" "$run/apiserver-certs"
chmod 700 "$run/pki"

# Free TCP ports on loopback: random ports below the ephemeral range that no
# socket in /proc/net/tcp{,6} uses, so the kernel will not hand them out to
# outgoing connections meanwhile.
used_ports() {
  local f addr
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r "$f" ]] || continue
    while read -r _ addr _; do
      if [[ "$addr" == *:* ]]; then echo $((16#${addr##*:})); fi
    done < <(tail -n +2 "$f")
  done
  return 0
}
pick_ports() { # <count>
  local used picked=() p
  used=" $(used_ports | tr '\n' ' ') "
  while ((${#picked[@]} < $1)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
    [[ "$used" == *" $p "* ]] && continue
    [[ " ${picked[*]} " == *" $p "* ]] && continue
    picked+=("$p")
  done
  echo "${picked[@]}"
}
read -r etcd_port etcd_peer_port api_port < <(pick_ports 3)
server="https://127.0.0.1:$api_port"

# --- certificates and keys ---------------------------------------------------
pki="$run/pki"
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=gso-test-ca" \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
ossl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
  -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr"
cat >"$pki/apiserver.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1
EOF
ossl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
  -CAcreateserial -days 3650 -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt"
ossl genrsa -out "$pki/sa.key" 2048
ossl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

# --- static tokens -----------------------------------------------------------
token() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
admin_token="$(token)"
developer_token="$(token)"
kcm_token="$(token)"
# token,user,uid,"group1,group2"
cat >"$pki/tokens.csv" <<EOF
$admin_token,admin,gso-admin,"system:masters"
$kcm_token,system:kube-controller-manager,gso-kcm,"system:masters"
$developer_token,developer,gso-developer
EOF
chmod 600 "$pki/tokens.csv"

write_kubeconfig() { # <file> <user> <token>
  local ca_data
  ca_data="$(base64 -w0 <"$pki/ca.crt")"
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: gso-test
  cluster:
    server: $server
    certificate-authority-data: $ca_data
users:
- name: $2
  user:
    token: $3
contexts:
- name: $2@gso-test
  context:
    cluster: gso-test
    user: $2
    namespace: default
current-context: $2@gso-test
EOF
  chmod 600 "$1"
}
write_kubeconfig "$kubeconfig" admin "$admin_token"
write_kubeconfig "$run/kubeconfig-developer" developer "$developer_token"
write_kubeconfig "$run/kubeconfig-controller-manager" system:kube-controller-manager "$kcm_token"

cat >"$run/endpoints.env" <<EOF
GSO_APISERVER=$server
GSO_ETCD=http://127.0.0.1:$etcd_port
GSO_KUBECONFIG=$kubeconfig
GSO_KUBECONFIG_DEVELOPER=$run/kubeconfig-developer
EOF

# --- start -------------------------------------------------------------------
# Detached (own session, stdio on files, lock fd closed) so the processes
# outlive this script and never hold a caller's pipe open.
start() { # <name> <binary> <args...>
  local name="$1" exe="$2"
  shift 2
  setsid "$exe" "$@" </dev/null >"$run/$name.log" 2>&1 9>&- &
  echo $! >"$run/$name.pid"
}

fail() {
  log "$1"
  for f in etcd kube-apiserver kube-controller-manager; do
    if [[ -f "$run/$f.log" ]]; then
      echo "----- tail of $run/$f.log -----" >&2
      tail -n 40 "$run/$f.log" >&2
    fi
  done
  stop_all
  exit 1
}

start etcd "$bin/etcd" \
  --name=gso-test \
  --data-dir="$run/etcd-data" \
  --listen-client-urls="http://127.0.0.1:$etcd_port" \
  --advertise-client-urls="http://127.0.0.1:$etcd_port" \
  --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
  --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster="gso-test=http://127.0.0.1:$etcd_peer_port" \
  --unsafe-no-fsync \
  --log-level=warn

start kube-apiserver "$bin/kube-apiserver" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --secure-port="$api_port" \
  --etcd-servers="http://127.0.0.1:$etcd_port" \
  --endpoint-reconciler-type=none \
  --cert-dir="$run/apiserver-certs" \
  --tls-cert-file="$pki/apiserver.crt" \
  --tls-private-key-file="$pki/apiserver.key" \
  --client-ca-file="$pki/ca.crt" \
  --token-auth-file="$pki/tokens.csv" \
  --authorization-mode=RBAC \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --profiling="${GSO_APISERVER_PROFILING:-false}" \
  --v=1

start kube-controller-manager "$bin/kube-controller-manager" \
  --kubeconfig="$run/kubeconfig-controller-manager" \
  --controllers=namespace,garbagecollector,serviceaccount-token,serviceaccount \
  --concurrent-namespace-syncs=50 \
  --service-account-private-key-file="$pki/sa.key" \
  --root-ca-file="$pki/ca.crt" \
  --use-service-account-credentials=false \
  --secure-port=0 \
  --leader-elect=false \
  --v=1

# --- wait ----------------------------------------------------------------------
deadline=$(($(date +%s) + ready_timeout))
until readyz; do
  all_alive || fail "a process exited during start-up"
  (($(date +%s) < deadline)) || fail "kube-apiserver not ready within ${ready_timeout}s"
  sleep 0.2
done
# The controller manager is up once its serviceaccount controller has created
# the default ServiceAccount: then namespace deletion and GC work as well.
until kctl get serviceaccount default --namespace default >/dev/null 2>&1; do
  all_alive || fail "a process exited during start-up"
  (($(date +%s) < deadline)) || fail "kube-controller-manager not working within ${ready_timeout}s"
  sleep 0.2
done

elapsed_ms=$(($(date +%s%3N) - start_ms))
log "ready at $server in $((elapsed_ms / 1000)).$(printf '%03d' $((elapsed_ms % 1000)))s"
echo "$kubeconfig"
