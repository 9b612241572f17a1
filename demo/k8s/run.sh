#!/usr/bin/env bash
# demo/k8s/run.sh: the sre.runbooks demo on a Kubernetes cluster (make cluster, kind, minikube...).
# The cluster is the one of $KUBECONFIG (or $SRE_RUNBOOKS_TEST_KUBECONFIG), its current context
# unless SRE_DEMO_KUBE_CONTEXT names another. See docs/kubernetes.md.
#   demo/k8s/run.sh up          images into kind, apply demo/k8s, wait for the rollouts, port-forward
#                               Prometheus to 127.0.0.1:19090 (on make cluster, whose Service
#                               addresses this machine routes, Prometheus is read at its own)
#   demo/k8s/run.sh bad-deploy  after a baseline of good traffic, kubectl set image to v1.2.3
#   demo/k8s/run.sh runbook     when HighErrorRate fires, the runbook in auto mode (extra args go
#                               to ansible-playbook, e.g. -e mitigate_mode=advise)
#   demo/k8s/run.sh down        stop the port-forward (by its pid), delete what up applied
set -euo pipefail

K8S_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd "$K8S_DIR/../.." && pwd -P)"
NAMESPACE=sre-demo
# Applied in this order by up, deleted in the reverse order by down (not rbac-runbook.yaml).
MANIFESTS=(namespace.yaml prometheus.yaml model-service.yaml feature-store.yaml inference-gateway.yaml loadgen.yaml)
DEPLOYMENTS=(prometheus model-service feature-store inference-gateway loadgen)
GOOD_VERSION=v1.2.2
BAD_VERSION=v1.2.3
# The images of demo/docker-compose.yml, built locally by demo/rig.sh images.
IMAGES=(sre-demo/inference-gateway:v1.2.2 sre-demo/inference-gateway:v1.2.3 sre-demo/inference-gateway:v1.2.4
        sre-demo/inference-gateway:v1.2.5
        sre-demo/model-service:v1.0.0
        sre-demo/feature-store:v1.0.0 sre-demo/loadgen:v1.0.0)
PROM_PORT=19090
PROM_URL="http://127.0.0.1:$PROM_PORT"
# make cluster (demo/k8s/cluster): its context, and the Prometheus image it builds (no registry
# can be reached there) in place of the manifest's.
TEST_CLUSTER_CONTEXT=sre-k8s
CLUSTER=$K8S_DIR/cluster/cluster.sh
MANIFEST_PROMETHEUS=quay.io/prometheus/prometheus:v2.53.2
STATE_DIR=${SRE_DEMO_K8S_STATE_DIR:-${XDG_RUNTIME_DIR:-/tmp}/sre-demo-k8s-$(id -u)}
PF_PIDFILE="$STATE_DIR/port-forward.pid"
PF_LOG="$STATE_DIR/port-forward.log"
# Seconds of good traffic before the bad deploy: the demo's baseline is a 30 s window 60 s back.
BASELINE_SECONDS=${SRE_DEMO_BASELINE_SECONDS:-100}
ROLLOUT_TIMEOUT=${SRE_DEMO_ROLLOUT_TIMEOUT:-300s}

log() { printf '[k8s-demo %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf 'demo/k8s/run.sh: ERROR: %s\n' "$*" >&2; exit 1; }
# No cluster, no tool: exit 2, saying what to set or install.
unusable() { printf 'demo/k8s/run.sh: %s\n' "$*" >&2; exit 2; }

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# ----------------------------------------------------------------------------- cluster

KUBECTL=(kubectl)

need_cluster() {
  if [[ -z ${KUBECONFIG:-} && -n ${SRE_RUNBOOKS_TEST_KUBECONFIG:-} ]]; then
    export KUBECONFIG=$SRE_RUNBOOKS_TEST_KUBECONFIG
  fi
  [[ -n ${KUBECONFIG:-} ]] ||
    unusable "no cluster: set KUBECONFIG (or SRE_RUNBOOKS_TEST_KUBECONFIG) to the kubeconfig of a Kubernetes cluster (kind, minikube, k3s), e.g. KUBECONFIG=~/.kube/config demo/k8s/run.sh up"
  command -v kubectl >/dev/null 2>&1 || unusable "kubectl is not installed (needed to apply the demo and port-forward Prometheus)"
  if [[ -n ${SRE_DEMO_KUBE_CONTEXT:-} ]]; then KUBECTL+=(--context "$SRE_DEMO_KUBE_CONTEXT"); fi
  "${KUBECTL[@]}" get --raw /version --request-timeout=10s >/dev/null 2>&1 ||
    unusable "no cluster answers for KUBECONFIG=$KUBECONFIG (context $(context)): start one (kind create cluster) or set KUBECONFIG (or SRE_RUNBOOKS_TEST_KUBECONFIG) to a reachable cluster"
}

context() {
  if [[ -n ${SRE_DEMO_KUBE_CONTEXT:-} ]]; then echo "$SRE_DEMO_KUBE_CONTEXT"; else kubectl config current-context 2>/dev/null || echo '?'; fi
}

kc() { "${KUBECTL[@]}" --namespace "$NAMESPACE" "$@"; }

# ----------------------------------------------------------------------------- images

test_cluster() { [[ $(context) == "$TEST_CLUSTER_CONTEXT" ]]; }

# The test cluster's node runs the local Docker engine's images: the demo's, and Prometheus built
# from its Go module (cluster.sh images).
local_images() {
  [[ $(id -u) == 0 ]] || die "the demo images are built as root (debootstrap, docker import)"
  "$CLUSTER" images
}

# kind: load the locally built images into the cluster's nodes. Elsewhere the cluster must be
# able to pull them: this only says so.
load_images() {
  local ctx cluster image missing=()
  ctx=$(context)
  if test_cluster; then
    local_images
    return 0
  fi
  if [[ $ctx != kind-* ]]; then
    log "context $ctx is not a kind cluster: the images ${IMAGES[*]} must already be in the cluster"
    log "  (minikube image load IMAGE; k3s: docker save IMAGE | sudo k3s ctr images import -;"
    log "   or push them to a registry the cluster pulls from and change the image names in demo/k8s)"
    return 0
  fi
  cluster=${ctx#kind-}
  command -v kind >/dev/null 2>&1 || die "context $ctx is a kind cluster but the kind command is not installed"
  command -v docker >/dev/null 2>&1 || die "docker is needed to load the demo images into kind"
  for image in "${IMAGES[@]}"; do
    docker image inspect "$image" >/dev/null 2>&1 || missing+=("$image")
  done
  if ((${#missing[@]} > 0)); then
    log "images missing locally (${missing[*]}): building them with demo/rig.sh images"
    [[ $(id -u) == 0 ]] || die "demo/rig.sh images needs root (debootstrap, docker import): run it as root first"
    "$ROOT/demo/rig.sh" images
  fi
  for image in "${IMAGES[@]}"; do
    log "kind load docker-image $image --name $cluster"
    kind load docker-image "$image" --name "$cluster" >/dev/null
  done
}

# ----------------------------------------------------------------------------- port-forward

pid_alive() {
  local state
  [[ -r /proc/$1/stat ]] || return 1
  state=$(sed -E 's/^.*\) (.).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}

# The pid of the port-forward this script started, if it still runs (pid file and command match).
pf_pid() {
  local pid
  [[ -s $PF_PIDFILE ]] || return 0
  pid=$(tr -dc '0-9' <"$PF_PIDFILE")
  [[ -n $pid ]] && pid_alive "$pid" || return 0
  [[ $(cat "/proc/$pid/comm" 2>/dev/null) == kubectl ]] && echo "$pid"
  return 0
}

prom_ready() {
  python3 - "$PROM_URL/-/ready" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1], timeout=3).read()
EOF
}

start_port_forward() {
  local pid deadline
  mkdir -p "$STATE_DIR"
  if test_cluster; then
    PROM_URL="http://$(kc get service prometheus -o jsonpath='{.spec.clusterIP}'):9090"
    deadline=$((SECONDS + 60))
    until prom_ready; do
      ((SECONDS < deadline)) || die "Prometheus does not answer on $PROM_URL after 60 s"
      sleep 1
    done
    log "Prometheus: $PROM_URL (its Service address, routed by make cluster)"
    return 0
  fi
  pid=$(pf_pid)
  if [[ -n $pid ]] && prom_ready; then
    log "Prometheus already forwarded to $PROM_URL (kubectl port-forward, pid $pid)"
    return 0
  fi
  [[ -z $pid ]] || stop_port_forward
  if prom_ready; then
    die "something else answers on $PROM_URL: stop it (this script only stops the port-forward it started)"
  fi
  log "kubectl port-forward svc/prometheus $PROM_PORT:9090 on 127.0.0.1 (log $PF_LOG, pid file $PF_PIDFILE)"
  nohup "${KUBECTL[@]}" --namespace "$NAMESPACE" port-forward --address 127.0.0.1 svc/prometheus \
    "$PROM_PORT:9090" >"$PF_LOG" 2>&1 </dev/null &
  echo $! >"$PF_PIDFILE"
  deadline=$((SECONDS + 60))
  until prom_ready; do
    pid_alive "$(cat "$PF_PIDFILE")" || { cat "$PF_LOG" >&2; die "kubectl port-forward exited (log $PF_LOG)"; }
    ((SECONDS < deadline)) || die "Prometheus does not answer on $PROM_URL after 60 s (log $PF_LOG)"
    sleep 1
  done
  log "Prometheus: $PROM_URL"
}

stop_port_forward() {
  local pid deadline
  pid=$(pf_pid)
  if [[ -z $pid ]]; then
    rm -f "$PF_PIDFILE"
    return 0
  fi
  log "stopping kubectl port-forward (pid $pid, from $PF_PIDFILE)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 10))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then kill -KILL "$pid" 2>/dev/null || true; break; fi
    sleep 0.2
  done
  rm -f "$PF_PIDFILE"
}

# ----------------------------------------------------------------------------- Prometheus

# wait_for PROMQL TIMEOUT WHAT: until the instant query returns a series.
wait_for() {
  local query=$1 timeout=$2 what=$3 deadline
  prom_ready || die "Prometheus does not answer on $PROM_URL: run demo/k8s/run.sh up"
  log "waiting up to ${timeout}s for $what"
  deadline=$((SECONDS + timeout))
  until python3 - "$PROM_URL" "$query" <<'EOF'
import json, sys, urllib.parse, urllib.request
url = sys.argv[1] + '/api/v1/query?' + urllib.parse.urlencode({'query': sys.argv[2]})
try:
    with urllib.request.urlopen(url, timeout=5) as answer:
        sys.exit(0 if json.load(answer)['data']['result'] else 1)
except Exception:
    sys.exit(1)
EOF
  do
    ((SECONDS < deadline)) || die "no $what after ${timeout}s (query: $query)"
    sleep 2
  done
  log "$what: yes"
}

# ----------------------------------------------------------------------------- commands

cmd_up() {
  local manifest prometheus_image=$MANIFEST_PROMETHEUS deployment
  need_cluster
  log "cluster: context $(context) (KUBECONFIG=$KUBECONFIG)"
  load_images
  if test_cluster; then prometheus_image=$("$CLUSTER" prometheus-image); fi
  for manifest in "${MANIFESTS[@]}"; do printf -- '---\n'; cat "$K8S_DIR/$manifest"; done |
    sed "s#$MANIFEST_PROMETHEUS#$prometheus_image#" | "${KUBECTL[@]}" apply -f -
  for deployment in "${DEPLOYMENTS[@]}"; do
    if ! kc rollout status "deployment/$deployment" --timeout="$ROLLOUT_TIMEOUT"; then
      kc get pods -o wide >&2 || true
      die "deployment $deployment not rolled out after $ROLLOUT_TIMEOUT (are the images in the cluster? see above)"
    fi
  done
  start_port_forward
  log "up: namespace $NAMESPACE ready; runbook: demo/k8s/run.sh bad-deploy && demo/k8s/run.sh runbook"
}

cmd_bad_deploy() {
  need_cluster
  start_port_forward
  wait_for "count_over_time(service:http_requests:rate30s{service=\"inference-gateway\"}[10m]) >= $BASELINE_SECONDS" \
    $((BASELINE_SECONDS + 120)) "$BASELINE_SECONDS s of the gateway's traffic in Prometheus (the baseline)"
  log "deploy inference-gateway: $GOOD_VERSION -> $BAD_VERSION"
  kc set image deployment/inference-gateway "inference-gateway=sre-demo/inference-gateway:$BAD_VERSION"
  # After set image: the controller copies it to the new ReplicaSet (revision) only.
  kc annotate deployment/inference-gateway --overwrite \
    "kubernetes.io/change-cause=deploy inference-gateway $BAD_VERSION (demo/k8s/run.sh bad-deploy)"
  kc rollout status deployment/inference-gateway --timeout="$ROLLOUT_TIMEOUT"
  kc rollout history deployment/inference-gateway
}

cmd_runbook() {
  local ansible_playbook=ansible-playbook
  need_cluster
  start_port_forward
  wait_for 'ALERTS{alertname="HighErrorRate",service="inference-gateway",alertstate="firing"}' 180 \
    "the HighErrorRate alert firing for inference-gateway"
  [[ -x $ROOT/.venv/bin/ansible-playbook ]] && ansible_playbook=$ROOT/.venv/bin/ansible-playbook
  [[ -e $ROOT/.collections/ansible_collections/sre/runbooks ]] ||
    die "the collection link is missing: run make venv first"
  cd "$ROOT"
  log "ansible-playbook playbooks/high_error_rate.yml -i inventories/kubernetes -e service=inference-gateway -e mitigate_mode=auto $*"
  ANSIBLE_CONFIG="$ROOT/ansible.cfg" "$ansible_playbook" playbooks/high_error_rate.yml -i inventories/kubernetes \
    -e service=inference-gateway -e mitigate_mode=auto -e runbook_prometheus_url="$PROM_URL" "$@"
}

cmd_status() {
  need_cluster
  kc get deployments,pods,services,hpa -o wide
  kc rollout history deployment/inference-gateway || true
  if prom_ready; then log "Prometheus: $PROM_URL (port-forward pid $(pf_pid))"; else log "Prometheus: not forwarded"; fi
}

cmd_down() {
  local i args=()
  stop_port_forward
  need_cluster
  for ((i = ${#MANIFESTS[@]} - 1; i >= 0; i--)); do args+=(-f "$K8S_DIR/${MANIFESTS[i]}"); done
  "${KUBECTL[@]}" delete --ignore-not-found --wait=true "${args[@]}"
  log "down: namespace $NAMESPACE and the Prometheus ClusterRole/ClusterRoleBinding deleted"
}

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  case $cmd in
    up) cmd_up ;;
    images) need_cluster; load_images ;;
    bad-deploy) cmd_bad_deploy ;;
    runbook) cmd_runbook "$@" ;;
    status) cmd_status ;;
    down) cmd_down ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
