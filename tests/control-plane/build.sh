#!/usr/bin/env bash
# Builds the control-plane programs the tests run (kube-apiserver,
# kube-controller-manager, kubectl, etcd, helm) from the pinned Go module into
# target/control-plane/bin. Skips the build when go.sum has not changed since
# the last successful one (stamp file), so a second run costs nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/target/control-plane/bin"
stamp="$bin/.go.sum.sha256"
want="$(sha256sum "$here/go.sum" "$here/go.mod" "$here/build.sh" | sha256sum | cut -d' ' -f1)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "control plane: binaries up to date in $bin"
  exit 0
fi

# The version the binaries report; without it they say v0.0.0-master and
# clients that check the server version (helm, kubectl) complain.
k8s_version="$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' "$here/go.mod")"
minor="$(echo "$k8s_version" | cut -d. -f2)"
vpkg="k8s.io/component-base/version"
ldflags="-s -w -X $vpkg.gitVersion=$k8s_version -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"
ldflags="$ldflags -X $vpkg.gitTreeState=clean"

mkdir -p "$bin"
cd "$here"
build() { # <output name> <package>
  echo "control plane: building $1"
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/$1" "$2"
}
build etcd go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kubectl k8s.io/kubernetes/cmd/kubectl
helm_version="$(awk '$1 == "helm.sh/helm/v3" {print $2; exit}' go.mod)"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
build helm helm.sh/helm/v3/cmd/helm
echo "$want" > "$stamp"
echo "control plane: built into $bin"
