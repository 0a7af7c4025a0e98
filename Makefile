# Entry points for building, running the local control plane and testing.
# `make test` is the command CI (.ci/run) and the README use.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

CP_DIR := tests/control-plane
CP_BIN := $(CURDIR)/target/control-plane/bin
KUBECONFIG_ADMIN := target/control-plane/run/kubeconfig

# kubectl and helm built for the tests win over any system-wide ones.
export PATH := $(CP_BIN):$(PATH)

.PHONY: control-plane sdk up down test dev manifests bench

## Build etcd, kube-apiserver, kube-controller-manager, kubectl, helm and
## gso-health (the GitOps tools' health verdicts for the tests; cached).
control-plane:
	$(CP_DIR)/build.sh

## Install SAP's SDK clients for the SDK tests (tests/it/sdk.rs) into
## target/sdk from the pins in tests/sdk/: Python sap-ai-sdk-core and a
## Node.js 24 from PyPI, @sap-ai-sdk/ai-api from npm (cached).
sdk:
	tests/sdk/install.sh

## Start (or reuse) the loopback control plane.
up: control-plane
	$(CP_DIR)/up.sh
	@echo
	@echo "try: kubectl --kubeconfig $(KUBECONFIG_ADMIN) get ns"

## Stop the dev operator and the control plane (by recorded PIDs).
down:
	$(CP_DIR)/down.sh

## Build the control plane and install the SDK clients, start the control
## plane, run every test; then, one at a time, the ignored ones: the fault
## tests that restart the control plane (tests/it/faults.rs) and the
## reconcile count of tests/it/scale.rs, which a loaded shared apiserver
## perturbs. With CI set the control plane is stopped afterwards; cargo's
## exit code is kept.
test: control-plane sdk
	$(CP_DIR)/up.sh >/dev/null
	export GSO_TEST_KUBECONFIG="$(CURDIR)/$(KUBECONFIG_ADMIN)"; \
	rc=0; cargo test --locked || rc=$$?; \
	if [[ $$rc -eq 0 ]]; then \
	  cargo test --locked --test it -- --ignored --test-threads=1 --nocapture || rc=$$?; \
	fi; \
	if [[ -n "$${CI:-}" ]]; then $(CP_DIR)/down.sh; fi; \
	exit $$rc

## Local development loop: start the control plane, build the operator,
## install the CRD, run the operator in the background (log and PID in
## target/control-plane/run/operator.{log,pid}), apply deploy/examples/ and
## wait until they are replicated. `make down` stops it all.
dev: control-plane
	$(CP_DIR)/up.sh >/dev/null
	cargo build --locked
	$(CP_DIR)/dev.sh up

## Render deploy/generic-secrets-operator.yaml from the Helm chart.
manifests: control-plane
	deploy/render.sh > deploy/generic-secrets-operator.yaml

## Benchmark the operator as the image ships it (the `dist` profile) on the
## loopback control plane (fan-out, rotation, many objects, restart, memory;
## N = GSO_BENCH_SIZES, default 10,100,1000; also GSO_BENCH_REPS,
## GSO_BENCH_QUIET_SECS, GSO_BENCH_UNRELATED). Writes docs/benchmarks.md and
## docs/benchmarks.svg. The control plane is restarted empty first, so that
## every run starts from the same state, not from what the shared etcd served
## before.
bench: control-plane
	$(CP_DIR)/down.sh >/dev/null
	$(CP_DIR)/up.sh >/dev/null
	cargo build --profile dist --locked --bin generic-secrets-operator
	GSO_BENCH_OPERATOR="$(CURDIR)/target/dist/generic-secrets-operator" \
	  cargo bench --locked --bench scale
