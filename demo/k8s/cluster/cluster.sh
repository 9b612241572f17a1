#!/usr/bin/env bash
# demo/k8s/cluster/cluster.sh: a real Kubernetes control plane on 127.0.0.1 for the tests and
# demo/k8s/run.sh: etcd, kube-apiserver, kube-controller-manager and kube-scheduler built from the
# Go modules pinned in go.mod (k8s.io/kubernetes v1.37.2, etcd v3.7.0), and one node whose agent
# (node.py) plays the kubelet's part towards the API. See docs/kubernetes.md, "The test cluster".
#   cluster.sh build              build the binaries once, cached by content in
#                                 ~/.cache/sre-runbooks/k8s/<key>/ (a second build reuses them)
#   cluster.sh build-background   the same, niced, in the background (make test starts it first)
#   cluster.sh images             the demo's images in the node's store (the local Docker engine):
#                                 demo/rig.sh's, and Prometheus built from its Go module (prometheus/)
#   cluster.sh up                 build (or reuse), start everything, wait until it serves; prints
#                                 the kubeconfig path. Safe to run twice.
#   cluster.sh down               stop it (by pid), remove its data and network namespace
#   cluster.sh kubeconfig         print the admin kubeconfig path
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd "$HERE/../../.." && pwd -P)"
# The release: one Go module per release beside this script (v1.37.2/, v1.34.0/).
VERSION=${SRE_K8S_RELEASE:-v1.37.2}
MODULE=$HERE/$VERSION
CACHE_ROOT=${SRE_RUNBOOKS_CACHE:-$HOME/.cache/sre-runbooks}/k8s
STATE=/var/lib/sre-k8s
RUN=/run/sre-k8s
LOGS=/var/log/sre-k8s
KUBECONFIG_FILE=$STATE/admin.kubeconfig
ETCD_PORT=23790
ETCD_PEER_PORT=23800
API_PORT=16443
NODE=sre-node-1
# Pod and Service addresses live in a network namespace of the cluster's own (routed there from
# the host, answered locally inside, replies routed back over the link-local pair): whatever dials
# them is refused at once and never leaves this machine.
NETNS=sre-k8s
HOST_LINK=169.254.244.1
NETNS_LINK=169.254.244.2
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.244.1.0/24
KUBERNETES_SERVICE_IP=10.244.1.1   # the first of SERVICE_CIDR: the `kubernetes` Service
NODE_IP=10.244.0.1                 # the first of POD_CIDR: the node's own address (its kubelet endpoint)
ROUTED=10.244.0.0/16
VENV_PYTHON=$ROOT/.venv/bin/python

log() { printf '[cluster %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf 'demo/k8s/cluster/cluster.sh: ERROR: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------------------------ build

[[ -f $MODULE/go.mod ]] ||
  die "SRE_K8S_RELEASE=$VERSION: no Go module for that release in $HERE (there are: $(cd "$HERE" && echo v*/ | tr -d /))"
MINOR=$(cut -d. -f2 <<<"$VERSION")
LDFLAGS="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDFLAGS+=" -X $pkg.gitVersion=$VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$MINOR -X $pkg.gitTreeState=clean"
done

cache_key() {
  { cat "$MODULE/go.mod" "$MODULE/go.sum" "$MODULE/tools.go"; go version; echo "$LDFLAGS"; } | sha256sum | cut -c1-16
}

bin_dir() { echo "$CACHE_ROOT/$(cache_key)/bin"; }

cmd_build() {
  command -v go >/dev/null || die "go is not installed: the control plane is built from Go modules with Go 1.26 or later (go.dev/dl; Debian 12's golang is too old)"
  local bin
  bin=$(bin_dir)
  mkdir -p "$CACHE_ROOT"
  # A build in the background holds the lock: wait for it, then reuse what it made. The lock's
  # descriptor is closed on return, so that the daemons started next do not hold it.
  exec 9>"$CACHE_ROOT/build.lock"
  flock -w 3600 9 || die "another build of the control plane has held $CACHE_ROOT/build.lock for an hour: see $CACHE_ROOT/build.log"
  if [[ ! -e $bin/.complete ]]; then build_into "$bin"; else log "binaries $VERSION reused from $bin"; fi
  exec 9>&-
}

build_into() {
  local bin=$1 out
  out=$(dirname "$bin")/bin.partial
  rm -rf "$out" && mkdir -p "$out"
  log "building kube-apiserver, kube-controller-manager, kube-scheduler $VERSION and etcd (several minutes the first time)"
  local start=$SECONDS
  (cd "$MODULE" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -trimpath -ldflags "$LDFLAGS" -o "$out/" \
     k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
     k8s.io/kubernetes/cmd/kube-scheduler &&
   GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
  touch "$out/.complete"
  rm -rf "$bin" && mv "$out" "$bin"
  log "built in $((SECONDS - start)) s: $bin"
}

cmd_build_background() {
  mkdir -p "$CACHE_ROOT"
  # shellcheck disable=SC2016  # $0 is the inner shell's: this script
  setsid nice -n 19 bash -c '"$0" build && "$0" build-prometheus' "$0" >"$CACHE_ROOT/build.log" 2>&1 </dev/null &
  log "building in the background (pid $!, log $CACHE_ROOT/build.log)"
}

# Prometheus for the demo's pods, from the Go module pinned in prometheus/ (Debian's prometheus
# leaves Kubernetes discovery out), cached by content as the control plane is.
PROMETHEUS_MODULE=$HERE/prometheus
PROMETHEUS_VERSION=$(awk '$1 == "require" && $2 == "github.com/prometheus/prometheus" {print $3}' "$PROMETHEUS_MODULE/go.mod")
PROMETHEUS_IMAGE=sre-demo/prometheus:$PROMETHEUS_VERSION
prometheus_bin() {
  echo "$CACHE_ROOT/prometheus/$({ cat "$PROMETHEUS_MODULE/go.mod" "$PROMETHEUS_MODULE/go.sum"; go version; } |
    sha256sum | cut -c1-16)/prometheus"
}

cmd_build_prometheus() {
  local out
  out=$(prometheus_bin)
  mkdir -p "$CACHE_ROOT"
  exec 9>"$CACHE_ROOT/build.lock"  # a build in the background: wait for it, then reuse
  flock -w 3600 9 || die "a build has held $CACHE_ROOT/build.lock for an hour: see $CACHE_ROOT/build.log"
  [[ -x $out ]] || build_prometheus "$out"
  exec 9>&-
}

build_prometheus() {
  local out=$1
  log "building Prometheus (github.com/prometheus/prometheus $PROMETHEUS_VERSION; a few minutes the first time)"
  mkdir -p "$(dirname "$out")"
  (cd "$PROMETHEUS_MODULE" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w \
     -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION" -o "$out.partial" \
     github.com/prometheus/prometheus/cmd/prometheus)
  mv "$out.partial" "$out"
  log "built $out"
}

# The demo's images where the node runs them: the local Docker engine's store.
cmd_images() {
  local bin hash context
  "$ROOT/demo/rig.sh" images
  cmd_build_prometheus
  bin=$(prometheus_bin)
  hash=$(sha256sum "$bin" | cut -c1-16)
  [[ $(docker image inspect -f '{{index .Config.Labels "io.sre-demo.binary-hash"}}' "$PROMETHEUS_IMAGE" 2>/dev/null) == "$hash" ]] &&
    return 0
  context=$(mktemp -d)
  cp "$bin" "$context/prometheus"
  printf 'FROM sre-demo/base:bookworm\nCOPY prometheus /bin/prometheus\nUSER 65534\nENTRYPOINT ["/bin/prometheus"]\nLABEL io.sre-demo.binary-hash=%s\n' \
    "$hash" >"$context/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$PROMETHEUS_IMAGE" "$context" >/dev/null || die "docker build of $PROMETHEUS_IMAGE failed"
  rm -rf "$context"
  log "image $PROMETHEUS_IMAGE built"
}

# ------------------------------------------------------------------------------------ up

pid_alive() { [[ -s $RUN/$1.pid ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

# start NAME COMMAND...: a process group of its own, its pid in $RUN/NAME.pid, its log in $LOGS.
start() {
  local name=$1; shift
  if pid_alive "$name"; then return 0; fi
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

# wait_for WHAT SECONDS NAME COMMAND...: until COMMAND succeeds; the process NAME must stay up.
wait_for() {
  local what=$1 seconds=$2 name=$3; shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    pid_alive "$name" || die "$name exited while starting: $(tail -n 5 "$LOGS/$name.log")"
    ((SECONDS < deadline)) || die "$what not ready after ${seconds}s: $(tail -n 5 "$LOGS/$name.log")"
    sleep 0.5
  done
}

pki() {
  local pki=$STATE/pki
  [[ -e $pki/.complete ]] && return 0
  mkdir -p "$pki" && chmod 700 "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=sre-k8s-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$pki/apiserver.key" \
    -out "$pki/apiserver.csr" 2>/dev/null
  openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -out "$pki/apiserver.crt" \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1,IP:%s,DNS:localhost,DNS:kubernetes.default.svc\n' "$KUBERNETES_SERVICE_IP") 2>/dev/null
  # The node agent's kubelet endpoint (logs), which the API server verifies with the same CA.
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$NODE" -keyout "$pki/kubelet.key" -out "$pki/kubelet.csr" 2>/dev/null
  openssl x509 -req -in "$pki/kubelet.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -out "$pki/kubelet.crt" -extfile <(printf 'subjectAltName=IP:%s,DNS:%s\n' "$NODE_IP" "$NODE") 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  # A static bearer token for the admin (system:masters), which the components use too.
  (umask 077; printf '%s,admin,admin,"system:masters"\n' "$(openssl rand -hex 24)" >"$pki/tokens.csv")
  touch "$pki/.complete"
}

admin_token() { cut -d, -f1 "$STATE/pki/tokens.csv"; }

kubeconfig() {
  [[ -e $KUBECONFIG_FILE ]] && return 0
  (umask 077; cat >"$KUBECONFIG_FILE.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: sre-k8s
    cluster:
      server: https://127.0.0.1:$API_PORT
      certificate-authority: $STATE/pki/ca.crt
users:
  - name: admin
    user:
      token: $(admin_token)
contexts:
  - name: sre-k8s
    context: {cluster: sre-k8s, user: admin, namespace: default}
current-context: sre-k8s
EOF
  )
  mv "$KUBECONFIG_FILE.tmp" "$KUBECONFIG_FILE"
}

netns() {
  if [[ ! -e /run/netns/$NETNS ]]; then
    local taken
    taken=$(ip -4 route show root "$ROUTED")
    [[ -z $taken ]] || die "$ROUTED is routed on this machine already ($taken): the test cluster keeps it for its own pods"
    trap 'netns_down' ERR
    ip netns add "$NETNS"
    ip link add sre-k8s0 type veth peer name sre-k8s1 netns "$NETNS"
    ip addr add "$HOST_LINK/32" dev sre-k8s0
    ip link set sre-k8s0 up
    ip -n "$NETNS" addr add "$NETNS_LINK/32" dev sre-k8s1
    ip -n "$NETNS" link set lo up
    ip -n "$NETNS" link set sre-k8s1 up
    ip -n "$NETNS" route add local "$ROUTED" dev lo
    ip -n "$NETNS" route add "$HOST_LINK/32" dev sre-k8s1
    ip -n "$NETNS" route add default via "$HOST_LINK" dev sre-k8s1
    # The namespace is the node's network: it forwards to the pods' own namespaces (node.py).
    ip netns exec "$NETNS" sysctl -qw net.ipv4.ip_forward=1
    ip route add "$ROUTED" via "$NETNS_LINK" dev sre-k8s0 onlink src "$HOST_LINK"
    trap - ERR
  fi
  ip route get "${POD_CIDR%.*}.2" | grep -q ' dev sre-k8s0 ' ||
    die "pod addresses are not routed into the network namespace $NETNS: run cluster.sh down, then up"
}

netns_down() {
  ip link del sre-k8s0 2>/dev/null || true  # its route goes with it
  if [[ -e /run/netns/$NETNS ]]; then ip netns del "$NETNS" || true; fi
}

api_ready() {  # the token on stdin, not on the command line
  printf 'Authorization: Bearer %s\n' "$(admin_token)" |
    curl -fsS -m 2 --cacert "$STATE/pki/ca.crt" -H @- "https://127.0.0.1:$API_PORT/readyz"
}

cmd_up() {
  cmd_build
  local bin
  bin=$(bin_dir)
  mkdir -p "$STATE" "$RUN" "$LOGS"
  pki
  kubeconfig
  netns
  start etcd "$bin/etcd" --name sre-k8s --data-dir "$STATE/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "sre-k8s=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls ""
  wait_for etcd 30 etcd curl -fsS -m 2 "http://127.0.0.1:$ETCD_PORT/health"
  start kube-apiserver "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --endpoint-reconciler-type none --tls-cert-file "$STATE/pki/apiserver.crt" \
    --tls-private-key-file "$STATE/pki/apiserver.key" --client-ca-file "$STATE/pki/ca.crt" \
    --token-auth-file "$STATE/pki/tokens.csv" --authorization-mode Node,RBAC \
    --service-account-issuer "https://127.0.0.1:$API_PORT" --service-account-key-file "$STATE/pki/sa.pub" \
    --service-account-signing-key-file "$STATE/pki/sa.key" --service-cluster-ip-range "$SERVICE_CIDR" \
    --allow-privileged=true --profiling=false --kubelet-preferred-address-types InternalIP \
    --kubelet-certificate-authority "$STATE/pki/ca.crt"
  wait_for kube-apiserver 90 kube-apiserver api_ready
  start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$KUBECONFIG_FILE" \
    --leader-elect=false --secure-port 0 --service-account-private-key-file "$STATE/pki/sa.key" \
    --root-ca-file "$STATE/pki/ca.crt" --use-service-account-credentials=false --profiling=false \
    --controllers deployment-controller,replicaset-controller,serviceaccount-controller,serviceaccount-token-controller,namespace-controller,garbage-collector-controller,horizontal-pod-autoscaler-controller,endpoints-controller,endpointslice-controller,resourcequota-controller,root-ca-certificate-publisher-controller
  start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$KUBECONFIG_FILE" --leader-elect=false \
    --secure-port 0 --profiling=false
  [[ -x $VENV_PYTHON ]] || die "$VENV_PYTHON missing: the node agent runs in the project's virtualenv (make venv)"
  start node "$VENV_PYTHON" "$HERE/node.py" --kubeconfig "$KUBECONFIG_FILE" --node "$NODE" --pod-cidr "$POD_CIDR" \
    --api-server "127.0.0.1:$API_PORT" --tls-cert "$STATE/pki/kubelet.crt" --tls-key "$STATE/pki/kubelet.key"
  wait_for "the node and the default ServiceAccount" 60 node "$VENV_PYTHON" "$HERE/node.py" \
    --kubeconfig "$KUBECONFIG_FILE" --node "$NODE" --check
  log "up: Kubernetes $VERSION at https://127.0.0.1:$API_PORT, node $NODE; KUBECONFIG=$KUBECONFIG_FILE"
}

# ------------------------------------------------------------------------------------ down

cmd_down() {
  local name pid
  for name in node kube-scheduler kube-controller-manager kube-apiserver etcd; do
    if pid_alive "$name"; then
      pid=$(cat "$RUN/$name.pid")
      kill -TERM -- "-$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$RUN/$name.pid"
  done
  # What a killed node agent leaves: its containers, pod namespaces and overlays.
  if [[ -x $VENV_PYTHON ]]; then (cd "$HERE" && "$VENV_PYTHON" -c 'import runtime; runtime.clean_leftovers()'); fi
  netns_down
  rm -rf "$STATE" "$LOGS/pods"
  log "down"
}

case ${1:-} in
  build) cmd_build ;;
  build-background) cmd_build_background ;;
  build-prometheus) cmd_build_prometheus ;;
  images) cmd_images ;;
  prometheus-image) echo "$PROMETHEUS_IMAGE" ;;
  up) cmd_up ;;
  down) cmd_down ;;
  kubeconfig) echo "$KUBECONFIG_FILE" ;;
  *) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
