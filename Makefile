# sre.runbooks: every target installs what it needs on a fresh machine and is safe to run twice.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PYTHON ?= python3.11
COLLECTION_LINK := .collections/ansible_collections/sre/runbooks
SANITY_DIR := build/ansible_collections/sre/runbooks
# ansible-test looks here before downloading its pip bootstrap script (no such download here).
PIP_BOOTSTRAP := $(HOME)/.ansible/test/cache/get_pip_24_2.py
MODULES := $(basename $(notdir $(wildcard plugins/modules/*.py)))
SERVICE ?= inference-gateway
BAD_VERSION ?= v1.2.3
MODE ?= auto
# make eda: the rulebook's mitigate_mode (EDA cannot answer the approval prompt: advise or auto).
EDA_MODE ?= advise

export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_FORCE_COLOR ?= 1

.PHONY: help deps venv rig second-rig demo demo-down preflight demo-k8s cluster cluster-down cluster-build eda \
	test lint sanity docs units integration faults integration-rig integration-cluster cluster-ready molecule scenarios \
	scenarios-compose scenarios-cluster bench \
	ee clean test-clock test-lane-rig test-lane-second-rig test-lane-cluster

help:
	@echo "make demo       the High Error Rate runbook on the local demo stack (bad deploy of $(BAD_VERSION))"
	@echo "make demo-down  remove the demo stack"
	@echo "make preflight  check the demo inventory against the live rig (pass / warn / fail)"
	@echo "make eda        Event-Driven Ansible: Alertmanager's webhook (127.0.0.1:5001) runs the runbook (EDA_MODE=$(EDA_MODE))"
	@echo "make cluster    a real Kubernetes control plane on 127.0.0.1 (built once from Go modules); cluster-down"
	@echo "make demo-k8s   the demo's incident on that cluster (or on \$$KUBECONFIG's), rolled back through the API"
	@echo "make ee         the AWX execution environment image (ansible-builder; docs/awx.md)"
	@echo "make test       lint, sanity, ansible-doc, unit, integration and Molecule tests, scenarios"
	@echo "make scenarios  every demo fault handled by the runbook (MODE=advise, FAULTS=...), then the cluster's"
	@echo "make bench      time to diagnosis, to recovery, and against a naive playbook"

# Packages only: policy-rc.d keeps their daemons (sshd on *:22, PostgreSQL on 5432) from starting;
# the rig starts its own, on loopback. PostgreSQL's binaries are not on PATH: initdb is looked for
# where Debian puts it.
deps:
	@missing=""; \
	for cmd in dockerd:docker.io docker-compose:docker-compose prometheus:prometheus \
	           promtool:prometheus prometheus-alertmanager:prometheus-alertmanager \
	           amtool:prometheus-alertmanager java:openjdk-17-jre-headless debootstrap:debootstrap \
	           git:git shellcheck:shellcheck kubectl:kubernetes-client \
	           sshd:openssh-server ssh:openssh-client openssl:openssl curl:curl ip:iproute2 \
	           rsvg-convert:librsvg2-bin; do \
	  command -v "$${cmd%%:*}" >/dev/null || missing="$$missing $${cmd#*:}"; \
	done; \
	compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; \
	    trap 'rm -f /usr/sbin/policy-rc.d' EXIT; \
	  fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

$(PIP_BOOTSTRAP): tests/tools/get_pip.py
	mkdir -p $(dir $@)
	cp $< $@

# awx.awx, which extensions/awx/controller.yml uses (ansible-lint resolves its modules): taken from
# the `ansible` package on PyPI, which carries it, without installing the package's other collections.
ANSIBLE_PACKAGE := ansible==12.3.0
AWX_COLLECTION := .collections/ansible_collections/awx/awx
$(AWX_COLLECTION): $(VENV)/.installed
	rm -rf build/ansible-package && $(BIN)/pip download -q --no-deps -d build/ansible-package $(ANSIBLE_PACKAGE)
	$(BIN)/python -c 'import sys, zipfile; wheel = zipfile.ZipFile(sys.argv[1]); \
	  wheel.extractall(".collections", [n for n in wheel.namelist() if n.startswith("ansible_collections/awx/awx/")])' \
	  build/ansible-package/*.whl
	rm -rf build/ansible-package

venv: $(VENV)/.installed $(COLLECTION_LINK) $(PIP_BOOTSTRAP) $(AWX_COLLECTION)

# make test's lanes run with RIG_UP set: the rig is up, and a convergence under a running suite
# would undo its faults.
rig: deps
	$(if $(RIG_UP),@true,demo/rig.sh up)

# The same rig again, in namespaces of its own (demo/second-rig.sh): make test's fault tests and
# scenarios run there, beside the first rig's suites.
SECOND_RIG := demo/second-rig.sh
second-rig: rig
	$(SECOND_RIG) up

# The demo's baseline is a 30 s window 60 s back: it must hold only the good version's traffic.
demo: venv rig
	demo/rig.sh clear
	demo/rig.sh wait-resolved 360
	demo/rig.sh wait-baseline 100
	demo/rig.sh deploy $(BAD_VERSION)
	demo/rig.sh wait-alert 180
	key=$$(demo/rig.sh wait-page 60) && \
	  time ansible-playbook playbooks/high_error_rate.yml -i inventories/compose -e service=$(SERVICE) \
	  -e mitigate_mode=auto -e communicate_pagerduty_dedup_key=$$key
	demo/rig.sh told

demo-down:
	demo/rig.sh down

# The AWX execution environment image sre-runbooks/ee:<version> (execution-environment.yml),
# built with ansible-builder on the rig's Debian base, cached by content (docs/awx.md).
ee: venv deps
	extensions/ee/build.sh

# The demo inventory checked against the running rig: a table of pass / warn / fail (docs/preflight.md).
preflight: venv rig
	ansible-playbook playbooks/preflight.yml -i inventories/compose -e service=$(SERVICE)

# A real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) and one
# node agent on 127.0.0.1; the node holds the rig's images (docs/kubernetes.md, "The test cluster").
CLUSTER := demo/k8s/cluster/cluster.sh
cluster: venv rig
	$(CLUSTER) up

cluster-down:
	$(CLUSTER) down

# make test starts the build first, in the background, niced: it runs while lint, the unit tests
# and most of the integration tests do, and `cluster.sh up` waits for it.
cluster-build:
	$(CLUSTER) build-background

# On the cluster of $$KUBECONFIG, or without it on make cluster; the channels are the rig's stand-ins.
demo-k8s: venv rig
	@if [ -z "$${KUBECONFIG:-}" ]; then $(MAKE) --no-print-directory cluster; fi
	export KUBECONFIG=$${KUBECONFIG:-$$($(CLUSTER) kubeconfig)}; \
	  demo/k8s/run.sh up && demo/k8s/run.sh bad-deploy && demo/k8s/run.sh runbook

# Event-Driven Ansible in the foreground (Ctrl-C ends it): Alertmanager's webhook reaches the
# rulebook's sre.runbooks.alertmanager source on 127.0.0.1:5001; a firing HighErrorRate runs
# playbooks/high_error_rate.yml for the alert's service (docs/eda.md).
# Rulebook variables come from the environment (-E): the gate, and where incident documents go.
eda: venv rig
	mitigate_mode=$(EDA_MODE) incident_report_dir=$(CURDIR)/incidents \
	  ansible-rulebook --rulebook extensions/eda/rulebooks/high_error_rate.yml -i inventories/compose \
	  -E mitigate_mode,incident_report_dir --print-events

lint: venv
	ruff check plugins tests
	mypy
	ansible-lint --profile production --strict
	antsibull-changelog lint

# ansible-test wants the collection under ansible_collections/<ns>/<name>: a copy of the
# tracked and new files (not the .venv), refreshed on each run, with a git index of its own
# (inside this checkout, git would see build/ as ignored).
sanity: venv deps
	rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR)
	git ls-files -co --exclude-standard | while read -r f; do [ -e "$$f" ] && echo "$$f"; done \
	  | tar -cf - -T - | tar -C $(SANITY_DIR) -xf -
	cd $(SANITY_DIR) && git init -q && git add -A && \
	  ansible-test sanity --venv --python 3.11 --color no $(SANITY_ARGS)

docs: venv
	for module in $(MODULES); do \
	  ansible-doc sre.runbooks.$$module > /dev/null || { echo "ansible-doc failed: $$module"; exit 1; }; \
	done; echo "ansible-doc renders $(words $(MODULES)) modules"

units: venv
	pytest -q tests/unit

# The integration tests: the faults first (they stop the Docker engine and Prometheus under a
# run), then the compose rig's suites, then the real cluster's (make cluster, on the rig's images,
# and the AWX execution environment).
FAULT_TESTS := tests/integration/test_rig_faults.py
REAL_CLUSTER := $(wildcard tests/integration/test_*real_cluster*.py)
CLUSTER_ENV = SRE_RUNBOOKS_TEST_KUBECONFIG=$$($(CLUSTER) kubeconfig) SRE_RUNBOOKS_TEST_IMAGE=sre-demo/loadgen:v1.0.0 \
  SRE_RUNBOOKS_TEST_PROMETHEUS_IMAGE=$$($(CLUSTER) prometheus-image)
integration: faults integration-rig integration-cluster

faults: venv rig
	pytest -q --durations=5 $(FAULT_TESTS)

integration-rig: venv rig
	pytest -q --durations=25 $(addprefix --ignore=,$(FAULT_TESTS) $(REAL_CLUSTER)) tests/integration

integration-cluster: cluster-ready ee
	$(CLUSTER_ENV) pytest -q --durations=10 $(REAL_CLUSTER)

# The cluster up with the rig's images; the test namespaces that an interrupted run left (their
# pods hold the node's CPU) go first.
cluster-ready: venv rig
	$(CLUSTER) up
	$(CLUSTER) images
	export KUBECONFIG=$$($(CLUSTER) kubeconfig); kubectl get namespaces -o name \
	  | { grep '^namespace/sre-runbooks-test-' || true; } | xargs -r kubectl delete --timeout=120s

molecule: venv rig
	for scenario in roles/*/molecule/default; do \
	  (cd $$scenario/../.. && molecule test) || exit 1; \
	done

# Every demo fault in turn on the compose rig, handled by the whole runbook (MODE=advise: diagnosis
# only; FAULTS="endpoint crash" for a subset); then Pod Crash Loop's causes on the real cluster, in
# auto mode (make test runs those in its cluster lane, with the other real-cluster tests).
CLUSTER_SCENARIOS := tests/integration/test_k8s_real_cluster_crash_loop.py
scenarios: scenarios-compose scenarios-cluster

scenarios-compose: venv rig
	python tests/scenarios/run.py --mode $(MODE) $(FAULTS)

scenarios-cluster: cluster-ready
	$(CLUSTER_ENV) pytest -q --durations=10 $(CLUSTER_SCENARIOS)

# Speed on the rig against the targets of docs/bench.md: prints a table, asserts nothing.
bench: venv rig
	python tests/bench/run.py $(BENCH_ARGS)

# Three lanes at once, each a list of targets run in turn (tests/lane.sh): the first rig's
# integration suite and Molecule; the fault tests (which stop the Docker engine and Prometheus)
# and the scenarios on the second rig; the checks (niced: the suites wait on timings, the checks
# only on CPU), then the real cluster. Lines go out as they come, prefixed (no output sync: a run
# cut short keeps what it printed). The control plane's first build runs from the start, niced,
# in the background; `cluster.sh up` waits for it. Each target's time is printed at the end.
LANE := MAKE="$(MAKE)" RIG_UP=1 tests/lane.sh
test: test-clock cluster-build venv rig second-rig
	@$(LANE) setup; status=0; \
	$(MAKE) --no-print-directory -j3 test-lane-rig test-lane-second-rig test-lane-cluster \
	  || status=$$?; \
	cat build/test-times.txt; exit $$status

test-clock:
	@mkdir -p build && date +%s > build/test-start && : > build/test-times.txt

test-lane-rig:
	+@$(LANE) rig integration-rig molecule

test-lane-second-rig:
	+@$(SECOND_RIG) run env $(LANE) second-rig faults scenarios-compose

test-lane-cluster:
	+@nice -n 10 env $(LANE) cluster lint sanity docs units
	+@$(LANE) cluster integration-cluster

clean: demo-down cluster-down
	$(SECOND_RIG) down
	rm -rf build $(VENV) .collections tests/output
