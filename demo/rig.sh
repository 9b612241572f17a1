#!/usr/bin/env bash
# demo/rig.sh: the local demo rig of sre.runbooks (High Error Rate and High Response Time runbooks).
# Loopback only: dockerd (no bridge), local images, Prometheus on 127.0.0.1:9090, Alertmanager
# on 127.0.0.1:9093 and the API stand-ins (Slack, PagerDuty, Statuspage) on 127.0.0.1:18111.
# See demo/README.md. Usage: demo/rig.sh {up|images|deploy|wait-baseline|wait-alert|
#   wait-clear|wait-resolved|inject|wait-fault|clear|status|down|query|check} [args]
set -euo pipefail

DEMO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
PROJECT=sre-demo
COMPOSE_FILE="$DEMO_DIR/docker-compose.yml"
STATE_DIR=/var/lib/sre-demo
RUN_DIR=/run/sre-demo
LOG_DIR=/var/log/sre-demo
PROM_DATA="$STATE_DIR/prometheus"
PROM_CONF_DIR="$STATE_DIR/prometheus-config"
PROM_PIDFILE="$RUN_DIR/prometheus.pid"
PROM_FINGERPRINT="$RUN_DIR/prometheus.fingerprint"
PROM_LISTEN=127.0.0.1:9090
PROM_URL="http://$PROM_LISTEN"
DOCKERD_PIDFILE="$RUN_DIR/dockerd.pid"
# Alertmanager (Debian prometheus-alertmanager): config rendered into the state dir, its data
# (silences, notification log) under the run dir, no cluster (--cluster.listen-address=).
AM_CONF_DIR="$STATE_DIR/alertmanager-config"
AM_DATA="$RUN_DIR/alertmanager"
AM_PIDFILE="$RUN_DIR/alertmanager.pid"
AM_FINGERPRINT="$RUN_DIR/alertmanager.fingerprint"
AM_LISTEN=127.0.0.1:9093
AM_URL="http://$AM_LISTEN"
# The API stand-ins (demo/lib/api_standin.py): Slack, PagerDuty and Statuspage as documented,
# with a journal of every request (GET /journal). Alertmanager pages there.
STANDIN_PORT=18111
STANDIN_URL="http://127.0.0.1:$STANDIN_PORT"
STANDIN_PIDFILE="$RUN_DIR/api-standin.pid"
STANDIN_FINGERPRINT="$RUN_DIR/api-standin.fingerprint"
STANDIN_LOG="$LOG_DIR/api-standin.log"
# sshd (Debian openssh-server) on 127.0.0.1:2222: the docker host reached over SSH, as users
# reach theirs (root, keys only). Its host key and config under $SSH_DIR; the keys allowed in are
# $SSH_DIR/authorized_keys, which the tests (or a user trying it) fill.
SSHD_LISTEN=127.0.0.1:2222
SSH_DIR="$STATE_DIR/ssh"
SSHD_PIDFILE="$RUN_DIR/sshd.pid"
SSHD_FINGERPRINT="$RUN_DIR/sshd.fingerprint"
DEPLOY_FILE="$STATE_DIR/last-deploy.json"
# The compose override file that sre.runbooks.compose_service owns (mitigations: pinned image,
# feature flags, circuit breaker, limits). The rig's clear and deploy start without it.
OVERRIDE_FILE=/var/lib/sre-runbooks/compose/$PROJECT/override.yml
# The open incidents the runbook keeps (sre.runbooks.incident_registry): a cleared rig has none.
INCIDENT_RECORDS=/var/lib/sre-runbooks/incidents
LOCK_FILE="$RUN_DIR/rig.lock"
# PostgreSQL (Debian postgresql) on 127.0.0.1:5433: the orders service's database, which the
# Database Issues runbook reads and acts on (role runbook: pg_monitor, pg_signal_backend). Its
# cluster lives in $PG_DATA and runs as the postgres user; stopped fast by pg_ctl.
PG_DATA="$STATE_DIR/postgres"
PG_SOCKET_DIR="$RUN_DIR/postgres"
PG_PORT=5433
PG_LOG="$LOG_DIR/postgres.log"
# The Database Issues fault: a report job (a container of its own, no compose service) that leaves
# a transaction open on every order.
REPORT_JOB="$PROJECT-nightly-report"
# Faults: the injected one, the runtime fault state the services keep (bind mounted into
# inference-gateway), and the process that holds port 8000 in the port-conflict fault.
FAULT_FILE="$STATE_DIR/fault.json"
FAULT_DIR="$STATE_DIR/faults"
SQUATTER_PIDFILE="$RUN_DIR/port-squatter.pid"
SQUATTER_LOG="$LOG_DIR/port-squatter.log"
FAULTS=(bad-deploy slow-deploy endpoint dependency dependency-down saturation memory crash crash-deploy port-conflict
        two-causes db-idle-tx startup-crash hang)
BAD_VERSION=v1.2.3
# The slow build: /predict answers 200 about 0.5 s later (an N+1 lookup; HighResponseTime, no 5xx).
SLOW_VERSION=v1.2.4
# The crashing build: it needs a setting (MODEL_REGISTRY_URL) the deploy does not give, and exits
# at start (crash-deploy: a crash loop until rolled back).
CRASH_VERSION=v1.2.5
# The gateway's limits in docker-compose.yml (160m, 1.0 CPU) as docker inspect shows them.
GATEWAY_LIMITS="$((160 * 1024 * 1024)) 1000000000"
BAD_MODEL_SERVICE_URL=not-a-url
# Variables of docker-compose.yml that the rig sets itself: the caller's values are dropped,
# so up/clear/deploy/inject always render the defaults plus what the command says.
RIG_VARS=(GATEWAY_VERSION GATEWAY_FAULT GATEWAY_MODEL_SERVICE_URL GATEWAY_CPUS GATEWAY_MEM_LIMIT
          FEATURE_ENDPOINT_PREDICT_ENABLED CIRCUIT_BREAKER_THRESHOLD CIRCUIT_BREAKER_TIMEOUT)

# Demo alert windows (production values live in prometheus/rules/*.rules.yml); the window is also
# HighResponseTime's (p99 above 500 ms for DEMO_LATENCY_FOR).
DEMO_WINDOW=30s
DEMO_CRITICAL_FOR=10s
DEMO_WARNING_FOR=30s
DEMO_LATENCY_FOR=30s

GOOD_VERSION=v1.2.2
BASE_IMAGE=sre-demo/base:bookworm
# The Debian packages of the base image (psycopg: the orders service); the image's comment names
# them, and a base made with others is made again.
BASE_PACKAGES=python3,python3-psycopg
BASE_COMMENT="debootstrap --variant=minbase --include=$BASE_PACKAGES bookworm"
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# service:tag:APP_VERSION
IMAGES=(
  "inference-gateway:v1.2.2:1.2.2"
  "inference-gateway:v1.2.3:1.2.3"
  "inference-gateway:v1.2.4:1.2.4"
  "inference-gateway:v1.2.5:1.2.5"
  "model-service:v1.0.0:1.0.0"
  "feature-store:v1.0.0:1.0.0"
  "loadgen:v1.0.0:1.0.0"
  "orders:v1.0.0:1.0.0"
)
SERVICE_PORTS=("8000=inference-gateway" "8080=model-service" "8081=feature-store" "8082=orders")

if [[ -x /usr/bin/python3 ]]; then PY=/usr/bin/python3; else PY=python3; fi
HELPER=("$PY" "$DEMO_DIR/lib/righelper.py")

log() { printf '[rig %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf 'rig: ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { "$PY" -c 'import sys,time; print("%.1f" % (time.time() - float(sys.argv[1])))' "$1"; }

usage() {
  cat <<EOF
usage: demo/rig.sh COMMAND [ARGS]
  up                      dockerd if needed, images (cached), Prometheus, Alertmanager, API stand-ins,
                          sshd on $SSHD_LISTEN, PostgreSQL on 127.0.0.1:$PG_PORT, stack at $GOOD_VERSION;
                          waits until healthy
  images [--force]        build the base image and the demo images (skipped when up to date)
  deploy VERSION          recreate only inference-gateway at image tag VERSION (e.g. v1.2.3, $SLOW_VERSION);
                          $GOOD_VERSION ends bad-deploy, slow-deploy and crash-deploy
  wait-baseline SECONDS   wait until the gateway at $GOOD_VERSION has been scraped for SECONDS
  wait-alert [TIMEOUT]    wait until HighErrorRate fires for inference-gateway (default 120 s)
  wait-clear [TIMEOUT]    wait until the gateway's 5xx ratio over $DEMO_WINDOW is < 1% (default 120 s)
  wait-resolved [TIMEOUT] wait until HighErrorRate on the gateway is resolved in Prometheus and
                          Alertmanager, so that a new bad deploy is paged anew (default 360 s)
  inject FAULT            inject one fault: ${FAULTS[*]}
  wait-fault FAULT [TIMEOUT]  wait until the fault is observable (default 180 s): HighErrorRate with the
                          fault's evidence, HighResponseTime at $SLOW_VERSION for slow-deploy, the gateway
                          down and restarting for the crashes, its /health timing out for hang
  clear                   undo any fault: stack at $GOOD_VERSION with the compose defaults, healthy;
                          the API stand-ins' journal and state reset
  wait-page [TIMEOUT]     wait for Alertmanager's page of the gateway at the API stand-in; print its dedup key
  told                    what Slack, PagerDuty and the status page were told (the API stand-ins' journal)
  status                  containers, versions, Prometheus targets, error ratios, the gateway's p99 per
                          endpoint, alerts, Alertmanager
  query PROMQL            instant query against $PROM_URL
  check                   static checks, nothing started: rules render, promtool, amtool, compose config
  stop|start PART         stop or start prometheus or postgres (their data kept) or the rig's dockerd
                          (the demo's containers come back with it): a source lost mid-run
  down                    remove containers, stop Prometheus, Alertmanager, the API stand-ins, sshd,
                          PostgreSQL (its data removed) and a dockerd this rig started
EOF
}

# ----------------------------------------------------------------------------- helpers

# pid_alive PID: running and not a zombie.
pid_alive() {
  local state
  [[ -r /proc/$1/stat ]] || return 1
  state=$(sed -E 's/^.*\) (.).*$/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}

# read_pid PIDFILE NAME: the pid if alive and its command is NAME, else nothing.
read_pid() {
  local pid comm
  [[ -s $1 ]] || return 0
  pid=$(tr -dc '0-9' <"$1")
  [[ -n $pid ]] && pid_alive "$pid" || return 0
  comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
  [[ $comm == "$2" ]] && echo "$pid"
  return 0
}

# stop_pidfile PIDFILE NAME TIMEOUT: SIGTERM, bounded wait, then SIGKILL. By pid only.
stop_pidfile() {
  local pidfile=$1 name=$2 timeout=$3 pid deadline
  pid=$(read_pid "$pidfile" "$name")
  if [[ -z $pid ]]; then
    rm -f "$pidfile"
    return 0
  fi
  log "stopping $name (pid $pid, from $pidfile)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      log "$name (pid $pid) still running after ${timeout}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      pid_alive "$pid" && die "$name (pid $pid) did not stop"
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
}

take_lock() {
  mkdir -p "$RUN_DIR" "$LOG_DIR" "$STATE_DIR"
  exec 9>"$LOCK_FILE"
  flock -w 600 9 || die "another demo/rig.sh holds $LOCK_FILE for more than 600 s"
}

# compose [VAR=VALUE ...] [--] ARGS: docker-compose of the demo project; the RIG_VARS of the
# caller's environment are dropped, the VAR=VALUE given here are set.
compose() {
  local envs=(env) var
  for var in "${RIG_VARS[@]}"; do envs+=(-u "$var"); done
  while [[ $# -gt 0 && $1 =~ ^[A-Z_][A-Z0-9_]*= ]]; do envs+=("$1"); shift; done
  [[ ${1:-} == -- ]] && shift
  if command -v docker-compose >/dev/null 2>&1; then
    "${envs[@]}" docker-compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@"
  elif docker compose version >/dev/null 2>&1; then
    "${envs[@]}" docker compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@"
  else
    die "neither docker-compose (v1) nor the docker compose plugin (v2) is installed"
  fi
}

# ----------------------------------------------------------------------------- dockerd

ensure_dockerd() {
  local pid other deadline
  docker info >/dev/null 2>&1 && return 0
  pid=$(read_pid "$DOCKERD_PIDFILE" dockerd)
  other=$(read_pid /var/run/docker.pid dockerd)
  if [[ -n $pid ]]; then
    log "dockerd (pid $pid, started by this rig) is not answering yet: waiting"
  elif [[ -n $other ]]; then
    log "a dockerd (pid $other, /var/run/docker.pid) is running but not answering yet: waiting"
  else
    command -v dockerd >/dev/null || die "dockerd is not installed (Debian package docker.io)"
    log "starting dockerd (log $LOG_DIR/dockerd.log, pidfile $DOCKERD_PIDFILE)"
    pid=$("${HELPER[@]}" spawn --log "$LOG_DIR/dockerd.log" --pidfile "$DOCKERD_PIDFILE" -- \
      dockerd --bridge=none --iptables=false --ip-masq=false --host unix:///var/run/docker.sock)
  fi
  deadline=$((SECONDS + 60))
  until docker info >/dev/null 2>&1; do
    if [[ -n $pid ]] && ! pid_alive "$pid"; then
      tail -n 20 "$LOG_DIR/dockerd.log" >&2 || true
      die "dockerd (pid $pid) exited; see $LOG_DIR/dockerd.log"
    fi
    ((SECONDS < deadline)) || die "dockerd did not answer 'docker info' within 60 s; see $LOG_DIR/dockerd.log"
    sleep 0.5
  done
  log "dockerd is answering"
}

# ----------------------------------------------------------------------------- images

umount_under() {
  # Unmount anything debootstrap may have left mounted below $1 (deepest first).
  local m
  awk -v d="$1" 'index($2, d"/") == 1 {print $2}' /proc/mounts | sort -r |
    while IFS= read -r m; do umount -l "$m" 2>/dev/null || true; done
}

ensure_base_image() {
  local tmp start
  if [[ $(docker image inspect -f '{{.Comment}}' "$BASE_IMAGE" 2>/dev/null) == "$BASE_COMMENT" ]]; then
    return 0
  fi
  command -v debootstrap >/dev/null || die "debootstrap is not installed (Debian package debootstrap)"
  start=$(now)
  tmp=$(mktemp -d /var/tmp/sre-demo-rootfs.XXXXXX)
  log "building $BASE_IMAGE: $BASE_COMMENT ($DEBIAN_MIRROR)"
  if ! timeout 900 debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$tmp" "$DEBIAN_MIRROR" \
      >"$LOG_DIR/debootstrap.log" 2>&1; then
    umount_under "$tmp"
    tail -n 20 "$LOG_DIR/debootstrap.log" >&2 || true
    die "debootstrap failed (log $LOG_DIR/debootstrap.log); the rootfs is left in $tmp"
  fi
  umount_under "$tmp"
  if awk -v d="$tmp" 'index($2, d"/") == 1 {f=1} END {exit !f}' /proc/mounts; then
    die "something is still mounted under $tmp; not importing nor deleting it"
  fi
  rm -rf "${tmp:?}"/var/cache/apt/archives/*.deb "${tmp:?}"/var/lib/apt/lists/* \
         "${tmp:?}"/usr/share/doc/* "${tmp:?}"/usr/share/man/* "${tmp:?}"/usr/share/locale/*
  tar -C "$tmp" --numeric-owner -c . |
    docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]' \
      -m "$BASE_COMMENT" - "$BASE_IMAGE" >/dev/null
  rm -rf --one-file-system "${tmp:?}"
  log "$BASE_IMAGE imported in $(since "$start")s"
}

cmd_images() {
  local force=0 start base_id src_hash spec svc tag version image have built=0
  [[ ${1:-} == --force ]] && force=1
  start=$(now)
  ensure_dockerd
  ensure_base_image
  base_id=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")
  src_hash=$("${HELPER[@]}" hash "$DEMO_DIR/app" "$base_id")
  for spec in "${IMAGES[@]}"; do
    IFS=: read -r svc tag version <<<"$spec"
    image="sre-demo/$svc:$tag"
    have=$(docker image inspect -f '{{index .Config.Labels "io.sre-demo.source-hash"}}' "$image" 2>/dev/null || true)
    if ((force == 0)) && [[ $have == "$src_hash" ]]; then
      continue
    fi
    log "building $image (APP_VERSION=$version, source hash $src_hash)"
    if ! DOCKER_BUILDKIT=0 docker build --build-arg BASE_IMAGE="$BASE_IMAGE" \
        --build-arg SERVICE="$svc" --build-arg APP_VERSION="$version" \
        --build-arg SOURCE_HASH="$src_hash" -t "$image" "$DEMO_DIR/app" \
        >"$LOG_DIR/build-$svc-$tag.log" 2>&1; then
      tail -n 20 "$LOG_DIR/build-$svc-$tag.log" >&2 || true
      die "docker build of $image failed; see $LOG_DIR/build-$svc-$tag.log"
    fi
    built=$((built + 1))
  done
  if ((built > 0)); then
    # Drop the demo images that the new builds untagged (never images in use).
    docker image prune -f --filter label=io.sre-demo.service >/dev/null 2>&1 || true
    log "images: built $built in $(since "$start")s (source hash $src_hash)"
  else
    log "images: all ${#IMAGES[@]} up to date (source hash $src_hash, $(since "$start")s)"
  fi
}

# ----------------------------------------------------------------------------- prometheus

render_prometheus_config() {
  local tmp file name keep=()
  mkdir -p "$PROM_CONF_DIR/rules"
  tmp=$(mktemp -d "$RUN_DIR/promconf.XXXXXX")
  mkdir -p "$tmp/rules"
  cp "$DEMO_DIR/prometheus/prometheus.yml" "$tmp/prometheus.yml"
  render_demo_rules "$tmp/rules"
  promtool check rules "$DEMO_DIR"/prometheus/rules/*.rules.yml >/dev/null ||
    die "promtool rejects the production rules (prometheus/rules/*.rules.yml)"
  { promtool check rules "$tmp"/rules/*.rules.yml &&
    promtool check config "$tmp/prometheus.yml"; } >"$tmp/check.log" 2>&1 ||
    { cat "$tmp/check.log" >&2; rm -rf "$tmp"; die "promtool rejects the demo Prometheus config/rules"; }
  # Replace files only when they differ, so an unchanged config is left untouched.
  cmp -s "$tmp/prometheus.yml" "$PROM_CONF_DIR/prometheus.yml" ||
    mv -f "$tmp/prometheus.yml" "$PROM_CONF_DIR/prometheus.yml"
  for file in "$tmp"/rules/*.rules.yml; do
    name=${file##*/}
    keep+=(! -name "$name")
    cmp -s "$file" "$PROM_CONF_DIR/rules/$name" || mv -f "$file" "$PROM_CONF_DIR/rules/$name"
  done
  find "$PROM_CONF_DIR/rules" -type f "${keep[@]}" -delete
  rm -rf "$tmp"
}

# render_demo_rules DIR: every rule file of render_rules.py (high-error-rate, high-response-time)
# with the demo's windows, into DIR.
render_demo_rules() {
  "$PY" "$DEMO_DIR/prometheus/render_rules.py" --preset demo --window "$DEMO_WINDOW" \
    --critical-for "$DEMO_CRITICAL_FOR" --warning-for "$DEMO_WARNING_FOR" \
    --latency-for "$DEMO_LATENCY_FOR" --output-dir "$1"
}

prometheus_args() {
  printf '%s\n' \
    --config.file="$PROM_CONF_DIR/prometheus.yml" \
    --storage.tsdb.path="$PROM_DATA" \
    --storage.tsdb.retention.time=31d \
    --web.listen-address="$PROM_LISTEN" \
    --web.enable-lifecycle
}

prometheus_fingerprint() {
  { prometheus_args; cat "$PROM_CONF_DIR/prometheus.yml" "$PROM_CONF_DIR"/rules/*.yml; } | sha256sum | cut -c1-32
}

ensure_prometheus() {
  local pid fp start deadline args=()
  command -v prometheus >/dev/null || die "prometheus is not installed (Debian package prometheus)"
  render_prometheus_config
  fp=$(prometheus_fingerprint)
  mapfile -t args < <(prometheus_args)
  pid=$(read_pid "$PROM_PIDFILE" prometheus)
  if [[ -n $pid ]]; then
    if [[ $(cat "$PROM_FINGERPRINT" 2>/dev/null) == "$fp" ]] &&
       tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "--config.file=$PROM_CONF_DIR/prometheus.yml" &&
       "${HELPER[@]}" wait-http --quiet --timeout 5 "$PROM_URL/-/ready" >/dev/null 2>&1; then
      log "prometheus: running (pid $pid) with this checkout's config"
      return 0
    fi
    log "prometheus (pid $pid) runs another config (or is not ready): restarting it"
    stop_pidfile "$PROM_PIDFILE" prometheus 20
  fi
  "${HELPER[@]}" check-ports 9090 ||
    die "cannot start Prometheus: port 9090 is taken by a process that is not this rig's Prometheus ($PROM_PIDFILE)"
  mkdir -p "$PROM_DATA"
  start=$(now)
  pid=$("${HELPER[@]}" spawn --log "$LOG_DIR/prometheus.log" --pidfile "$PROM_PIDFILE" -- prometheus "${args[@]}")
  echo "$fp" >"$PROM_FINGERPRINT"
  deadline=$((SECONDS + 60))
  until "${HELPER[@]}" wait-http --quiet --timeout 1 "$PROM_URL/-/ready" >/dev/null 2>&1; do
    if ! pid_alive "$pid"; then
      tail -n 20 "$LOG_DIR/prometheus.log" >&2 || true
      rm -f "$PROM_PIDFILE" "$PROM_FINGERPRINT"
      die "prometheus (pid $pid) exited at start; see $LOG_DIR/prometheus.log"
    fi
    ((SECONDS < deadline)) || die "prometheus did not become ready on $PROM_URL within 60 s; see $LOG_DIR/prometheus.log"
    sleep 0.3
  done
  log "prometheus: started (pid $pid) on $PROM_URL, ready in $(since "$start")s"
}

# ----------------------------------------------------------------------------- alertmanager

alertmanager_bin() {
  local bin
  for bin in prometheus-alertmanager alertmanager; do
    command -v "$bin" && return 0
  done
  return 1
}

render_alertmanager_config() {
  local tmp
  mkdir -p "$AM_CONF_DIR"
  tmp=$(mktemp -d "$RUN_DIR/amconf.XXXXXX")
  cp "$DEMO_DIR/alertmanager/alertmanager.yml" "$tmp/alertmanager.yml"
  amtool check-config "$tmp/alertmanager.yml" >"$tmp/check.log" 2>&1 ||
    { cat "$tmp/check.log" >&2; rm -rf "$tmp"; die "amtool rejects the demo Alertmanager config"; }
  cmp -s "$tmp/alertmanager.yml" "$AM_CONF_DIR/alertmanager.yml" ||
    mv -f "$tmp/alertmanager.yml" "$AM_CONF_DIR/alertmanager.yml"
  rm -rf "$tmp"
}

alertmanager_args() {
  printf '%s\n' \
    --config.file="$AM_CONF_DIR/alertmanager.yml" \
    --storage.path="$AM_DATA" \
    --web.listen-address="$AM_LISTEN" \
    --web.external-url="$AM_URL" \
    --cluster.listen-address=
}

# ensure_daemon NAME PIDFILE FINGERPRINT_FILE FINGERPRINT READY_URL LOG PORT -- COMMAND...:
# keep a running NAME whose fingerprint (command line + config) is this checkout's, else
# (re)start it by its pidfile (after before_start_NAME, when defined) and wait until READY_URL
# answers 200.
ensure_daemon() {
  local name=$1 pidfile=$2 fpfile=$3 fp=$4 ready=$5 logfile=$6 port=$7 pid comm start deadline
  shift 7
  [[ ${1:-} == -- ]] && shift
  comm=$(basename "$1" | cut -c1-15)
  [[ $name == api-standin ]] && comm=api-standin
  pid=$(read_pid "$pidfile" "$comm")
  if [[ -n $pid ]]; then
    if [[ $(cat "$fpfile" 2>/dev/null) == "$fp" ]] &&
       "${HELPER[@]}" wait-http --quiet --timeout 5 "$ready" >/dev/null 2>&1; then
      log "$name: running (pid $pid) with this checkout's config"
      return 0
    fi
    log "$name (pid $pid) runs another config (or is not ready): restarting it"
    stop_pidfile "$pidfile" "$comm" 20
  fi
  "${HELPER[@]}" check-ports "$port" ||
    die "cannot start $name: port $port is taken by a process that is not this rig's $name ($pidfile)"
  if declare -F "before_start_$name" >/dev/null; then "before_start_$name"; fi
  start=$(now)
  pid=$("${HELPER[@]}" spawn --log "$logfile" --pidfile "$pidfile" -- "$@")
  echo "$fp" >"$fpfile"
  deadline=$((SECONDS + 60))
  until "${HELPER[@]}" wait-http --quiet --timeout 1 "$ready" >/dev/null 2>&1; do
    if ! pid_alive "$pid"; then
      tail -n 20 "$logfile" >&2 || true
      rm -f "$pidfile" "$fpfile"
      die "$name (pid $pid) exited at start; see $logfile"
    fi
    ((SECONDS < deadline)) || die "$name did not become ready ($ready) within 60 s; see $logfile"
    sleep 0.3
  done
  log "$name: started (pid $pid), ready in $(since "$start")s"
}

# A new Alertmanager starts with an empty notification log. The one on disk is the last snapshot
# (every 15 minutes, or at a clean stop) of the Alertmanager before it, which may hold the
# gateway's page as still firing: the next bad deploy (the same labels) would then not be paged
# for repeat_interval. Silences are kept.
before_start_alertmanager() { rm -f "$AM_DATA/nflog"; }

ensure_alertmanager() {
  local bin fp args=()
  bin=$(alertmanager_bin) || die "alertmanager is not installed (Debian package prometheus-alertmanager)"
  command -v amtool >/dev/null || die "amtool is not installed (Debian package prometheus-alertmanager)"
  render_alertmanager_config
  mapfile -t args < <(alertmanager_args)
  fp=$({ printf '%s\n' "$bin" "${args[@]}"; cat "$AM_CONF_DIR/alertmanager.yml"; } | sha256sum | cut -c1-32)
  mkdir -p "$AM_DATA"
  ensure_daemon alertmanager "$AM_PIDFILE" "$AM_FINGERPRINT" "$fp" "$AM_URL/-/ready" \
    "$LOG_DIR/alertmanager.log" "${AM_LISTEN##*:}" -- "$bin" "${args[@]}"
}

ensure_api_standin() {
  local fp script="$DEMO_DIR/lib/api_standin.py"
  fp=$({ echo "$PY $STANDIN_PORT"; cat "$script"; } | sha256sum | cut -c1-32)
  ensure_daemon api-standin "$STANDIN_PIDFILE" "$STANDIN_FINGERPRINT" "$fp" "$STANDIN_URL/health" \
    "$STANDIN_LOG" "$STANDIN_PORT" -- "$PY" "$script" --host 127.0.0.1 --port "$STANDIN_PORT" \
    --log "$STANDIN_LOG"
}

render_sshd_config() {
  mkdir -p "$SSH_DIR" /run/sshd
  chmod 700 "$SSH_DIR"
  [[ -s $SSH_DIR/host_ed25519_key ]] || ssh-keygen -q -t ed25519 -N '' -C sre-demo-docker-host \
    -f "$SSH_DIR/host_ed25519_key"
  [[ -e $SSH_DIR/authorized_keys ]] || install -m 600 /dev/null "$SSH_DIR/authorized_keys"
  cat >"$SSH_DIR/sshd_config" <<EOF
ListenAddress $SSHD_LISTEN
HostKey $SSH_DIR/host_ed25519_key
PidFile $SSHD_PIDFILE
AuthorizedKeysFile $SSH_DIR/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
LogLevel VERBOSE
Subsystem sftp internal-sftp
EOF
}

# ensure_sshd: the rig's sshd, restarted when its config changed; by pid only.
ensure_sshd() {
  local fp pid deadline
  [[ -x /usr/sbin/sshd ]] || die "sshd is not installed (Debian package openssh-server)"
  render_sshd_config
  fp=$(sha256sum <"$SSH_DIR/sshd_config" | cut -c1-32)
  pid=$(read_pid "$SSHD_PIDFILE" sshd)
  if [[ -n $pid && $(cat "$SSHD_FINGERPRINT" 2>/dev/null) == "$fp" ]]; then
    log "sshd: running (pid $pid) on $SSHD_LISTEN"
    return 0
  fi
  [[ -z $pid ]] || stop_pidfile "$SSHD_PIDFILE" sshd 10
  "${HELPER[@]}" check-ports "${SSHD_LISTEN##*:}" ||
    die "cannot start sshd: port ${SSHD_LISTEN##*:} is taken by a process that is not this rig's sshd"
  /usr/sbin/sshd -t -f "$SSH_DIR/sshd_config" || die "sshd rejects $SSH_DIR/sshd_config"
  /usr/sbin/sshd -f "$SSH_DIR/sshd_config" -E "$LOG_DIR/sshd.log"
  echo "$fp" >"$SSHD_FINGERPRINT"
  deadline=$((SECONDS + 10))
  until (exec 3<>"/dev/tcp/${SSHD_LISTEN%:*}/${SSHD_LISTEN##*:}") 2>/dev/null; do
    ((SECONDS < deadline)) || die "sshd did not listen on $SSHD_LISTEN within 10 s; see $LOG_DIR/sshd.log"
    sleep 0.2
  done
  log "sshd: started (pid $(read_pid "$SSHD_PIDFILE" sshd)) on $SSHD_LISTEN, keys in $SSH_DIR/authorized_keys"
}

# ----------------------------------------------------------------------------- postgres

pg_bin() {
  local dirs=(/usr/lib/postgresql/*/bin) dir
  dir=$(printf '%s\n' "${dirs[@]}" | sort -V | tail -n 1)
  [[ -x $dir/postgres ]] || die "PostgreSQL is not installed (Debian package postgresql)"
  echo "$dir"
}

postgres_pid() {
  local pid
  [[ -s $PG_DATA/postmaster.pid ]] || return 0
  pid=$(head -n 1 "$PG_DATA/postmaster.pid" | tr -dc '0-9')
  [[ -n $pid ]] && pid_alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == postgres ]] && echo "$pid"
  return 0
}

# The roles, the database and its orders, made once (each statement checks what exists).
postgres_bootstrap() {
  local bin=$1
  runuser -u postgres -- "$bin/psql" -h "$PG_SOCKET_DIR" -p "$PG_PORT" -X -q -v ON_ERROR_STOP=1 -d postgres <<'SQL' >/dev/null
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', name, password) FROM (VALUES
  ('orders', 'orders-demo'), ('reports', 'reports-demo'), ('runbook', 'runbook-demo')) AS r(name, password)
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name)\gexec
GRANT pg_monitor, pg_signal_backend TO runbook;
SELECT 'CREATE DATABASE shop OWNER orders' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'shop')\gexec
\connect shop
CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, status text NOT NULL, total_cents int NOT NULL,
                                   reads bigint NOT NULL DEFAULT 0);
ALTER TABLE orders OWNER TO orders;
INSERT INTO orders SELECT g, (ARRAY['paid', 'shipped', 'delivered'])[1 + g % 3], 1000 + 37 * g
  FROM generate_series(1, 50) AS g ON CONFLICT DO NOTHING;
GRANT SELECT, UPDATE ON orders TO reports;
SQL
}

ensure_postgres() {
  local bin pid start
  bin=$(pg_bin)
  install -d -o postgres -g postgres -m 755 "$PG_SOCKET_DIR"
  pid=$(postgres_pid)
  if [[ -n $pid ]]; then
    log "postgres: running (pid $pid) on 127.0.0.1:$PG_PORT"
    return 0
  fi
  start=$(now)
  if [[ ! -s $PG_DATA/PG_VERSION ]]; then
    rm -rf --one-file-system "${PG_DATA:?}"
    install -d -o postgres -g postgres -m 700 "$PG_DATA"
    runuser -u postgres -- "$bin/initdb" -D "$PG_DATA" -U postgres --auth-local=peer \
      --auth-host=scram-sha-256 >"$LOG_DIR/initdb.log" 2>&1 || die "initdb failed; see $LOG_DIR/initdb.log"
  fi
  "${HELPER[@]}" check-ports "$PG_PORT" ||
    die "cannot start PostgreSQL: port $PG_PORT is taken by a process that is not this rig's PostgreSQL"
  install -o postgres -g postgres -m 640 /dev/null "$PG_LOG"
  # 9>&-: the server must not inherit the rig's lock.
  runuser -u postgres -- "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 30 -o \
    "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_SOCKET_DIR -c max_connections=40" \
    start >/dev/null 9>&- || { tail -n 20 "$PG_LOG" >&2; die "PostgreSQL did not start; see $PG_LOG"; }
  postgres_bootstrap "$bin" || die "could not create the demo's roles and database in PostgreSQL"
  log "postgres: started (pid $(postgres_pid)) on 127.0.0.1:$PG_PORT, ready in $(since "$start")s"
}

stop_postgres() {
  [[ -n $(postgres_pid) ]] || return 0
  log "stopping postgres (pid $(postgres_pid))"
  runuser -u postgres -- "$(pg_bin)/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null
}

# The report job of the db-idle-tx fault; never fails.
stop_report_job() {
  docker rm -f "$REPORT_JOB" >/dev/null 2>&1 || true
}

reset_api_standin() {
  "$PY" - "$STANDIN_URL/journal/reset" <<'PYEOF' || log "could not reset the API stand-ins' journal ($STANDIN_URL)"
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b"", method="POST"), timeout=5).read()
PYEOF
}

alertmanager_status() {
  echo "== alertmanager ($AM_URL)"
  "$PY" - "$AM_URL" "$STANDIN_URL" <<'PYEOF' || true
import json, sys, urllib.request
am, standin = sys.argv[1], sys.argv[2]
def get(url):
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.load(resp)
try:
    alerts = get(am + "/api/v2/alerts")
except (OSError, ValueError) as exc:
    print("  not answering: %s" % getattr(exc, "reason", exc))
else:
    for a in sorted(alerts, key=lambda a: a.get("startsAt", "")):
        labels = a.get("labels", {})
        print("  %s{service=%s,severity=%s} %s since %s -> %s" % (
            labels.get("alertname"), labels.get("service"), labels.get("severity"),
            a.get("status", {}).get("state"), a.get("startsAt", "")[:19],
            ", ".join(r.get("name", "?") for r in a.get("receivers", []))))
    if not alerts:
        print("  no alerts")
print("== API stand-ins (%s)" % standin)
try:
    journal = get(standin + "/journal")
except (OSError, ValueError) as exc:
    print("  not answering: %s" % getattr(exc, "reason", exc))
else:
    counts = {}
    for entry in journal:
        counts[entry["api"]] = counts.get(entry["api"], 0) + 1
    print("  journal: %d requests (%s)" % (len(journal), ", ".join(
        "%s %d" % kv for kv in sorted(counts.items())) or "none"))
PYEOF
}

# ----------------------------------------------------------------------------- stack

project_container_ids() {
  docker ps -q --no-trunc --filter "label=com.docker.compose.project=$PROJECT" | paste -sd, -
}

gateway_image() {
  docker ps --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=inference-gateway" --format '{{.Image}}' | head -n 1
}

health_urls() {
  local spec
  for spec in "${SERVICE_PORTS[@]}"; do printf 'http://127.0.0.1:%s/health\n' "${spec%%=*}"; done
}

# record_deploy VERSION PREVIOUS STAMP EPOCH: what wait-alert/wait-clear/status report.
record_deploy() {
  printf '{"service": "inference-gateway", "version": "%s", "previous": "%s", "time": "%s", "epoch": %s}\n' \
    "$1" "$2" "$3" "$4" >"$DEPLOY_FILE.tmp"
  mv -f "$DEPLOY_FILE.tmp" "$DEPLOY_FILE"
}

gateway_id() {
  docker ps -aq --no-trunc --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=inference-gateway" | head -n 1
}

# The injected fault (from $FAULT_FILE), or nothing.
current_fault() {
  [[ -s $FAULT_FILE ]] || return 0
  "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("fault", ""))' "$FAULT_FILE" 2>/dev/null || true
}

fault_time() {
  "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get("time", "?"))' "$FAULT_FILE" 2>/dev/null || echo "?"
}

# Undo the faults that live outside the compose file: the port squatter, the runtime
# faults of the services (admin API) and their state files. Never fails.
clear_runtime_faults() {
  local svc port id
  stop_pidfile "$SQUATTER_PIDFILE" port-squatter 10
  stop_report_job
  for svc in inference-gateway:8000 model-service:8080; do
    port=${svc#*:}
    svc=${svc%%:*}
    id=$(docker ps -q --filter "label=com.docker.compose.project=$PROJECT" \
      --filter "label=com.docker.compose.service=$svc" --filter status=running | head -n 1)
    [[ -n $id ]] || continue
    # The admin API answers even when the service is slow or hung (it releases the waiting
    # requests); a crash-looping one refuses.
    "${HELPER[@]}" admin "$svc" all off --timeout 2 >/dev/null 2>&1 ||
      log "could not switch the runtime faults of $svc (127.0.0.1:$port) off; its state file is removed anyway"
  done
  # Without its state file a gateway that crash-looped on a persisted fault (startup_crash,
  # memory_growth) starts clean: reset_gateway_state restarts it.
  mkdir -p "$FAULT_DIR"
  find "$FAULT_DIR" -maxdepth 1 -type f -delete
}

# A gateway container whose limits were changed in place (docker update) is recreated; one
# that crash-loops, restarted or was OOM-killed keeps saying so (RestartCount,
# State.OOMKilled) until it is started by hand: restart it (no recreate).
reset_gateway_state() {
  local id state limits
  id=$(gateway_id)
  [[ -n $id ]] || return 0
  limits=$(docker inspect -f '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}' "$id")
  if [[ $limits != "$GATEWAY_LIMITS" ]]; then
    log "recreating inference-gateway: its limits (memory, nano CPUs) are $limits, not $GATEWAY_LIMITS"
    compose GATEWAY_VERSION="$GOOD_VERSION" -- up -d --no-deps --force-recreate inference-gateway 2>&1 | sed 's/^/  /'
    return 0
  fi
  state=$(docker inspect -f '{{.State.Status}} restarting={{.State.Restarting}} restarts={{.RestartCount}} oom={{.State.OOMKilled}}' "$id")
  if [[ $state != "running restarting=false restarts=0 oom=false" ]]; then
    log "restarting inference-gateway to reset its container state ($state)"
    compose -- restart -t 3 inference-gateway 2>&1 | sed 's/^/  /'
  fi
}

# converge_stack: every service at its compose defaults (gateway $GOOD_VERSION), no fault,
# healthy and scraped. Recreates only what differs from the compose file.
drop_mitigations() {
  if [[ -e $OVERRIDE_FILE ]]; then
    log "removing the mitigations of earlier runs ($OVERRIDE_FILE)"
    rm -f "$OVERRIDE_FILE"
  fi
}

# A container made with the override file, once the file is gone, still names it in its compose
# labels, and compose's config check of that container fails: it is made again without it.
recreate_without_override() {
  local id svc
  for id in $(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"); do
    docker inspect --format '{{index .Config.Labels "com.docker.compose.project.config_files"}}' "$id" |
      tr ',' '\n' | grep -qxF "$OVERRIDE_FILE" || continue
    [[ -e $OVERRIDE_FILE ]] && continue
    svc=$(docker inspect --format '{{index .Config.Labels "com.docker.compose.service"}}' "$id")
    log "recreating $svc: it was made with $OVERRIDE_FILE, which is gone"
    compose GATEWAY_VERSION="$GOOD_VERSION" -- up -d --no-deps --force-recreate "$svc" 2>&1 | sed 's/^/  /'
  done
}

converge_stack() {
  local specs=() spec urls=() prev stamp epoch recreate=()
  clear_runtime_faults
  for spec in "${SERVICE_PORTS[@]}"; do specs+=("${spec%%=*}=containers"); done
  "${HELPER[@]}" check-ports --containers "$(project_container_ids)" "${specs[@]}" ||
    die "a demo port (8000, 8080, 8081, 8082) is taken by a process outside the sre-demo containers"
  prev=$(gateway_image)
  stamp=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
  epoch=$(date +%s.%N)
  drop_mitigations
  # Containers made from another checkout name its directory, which the runbook's compose
  # commands then use: they are made again from this one.
  if docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker inspect --format \
       '{{index .Config.Labels "com.docker.compose.project.working_dir"}}' | grep -qvxF "$DEMO_DIR"; then
    recreate=(--force-recreate)
    log "containers of project $PROJECT were made from another checkout: recreating them from $DEMO_DIR"
  fi
  log "compose up (project $PROJECT, inference-gateway $GOOD_VERSION, compose defaults)"
  compose GATEWAY_VERSION="$GOOD_VERSION" -- up -d --remove-orphans "${recreate[@]}" 2>&1 | sed 's/^/  /'
  if [[ -n $prev && ${prev##*:} != "$GOOD_VERSION" ]]; then
    record_deploy "$GOOD_VERSION" "${prev##*:}" "$stamp" "$epoch"
    log "inference-gateway brought back from ${prev##*:} to $GOOD_VERSION at $stamp"
  fi
  recreate_without_override
  reset_gateway_state
  mapfile -t urls < <(health_urls)
  "${HELPER[@]}" wait-http --timeout 60 --quiet "${urls[@]}" ||
    die "the demo services did not all answer /health within 60 s (see: docker logs, demo/rig.sh status)"
  "${HELPER[@]}" wait-http --timeout 10 --quiet --contains "\"version\": \"${GOOD_VERSION#v}\"" \
    http://127.0.0.1:8000/health || die "inference-gateway does not report version ${GOOD_VERSION#v}"
  "${HELPER[@]}" wait-targets --timeout 30 || die "Prometheus does not see all targets up"
  favour_containers
  rm -f "$FAULT_FILE"
}

# The containers' CPU weight against the host's own processes (cgroup v1 cpu.shares, or v2
# cpu.weight, of the engine's parent cgroup): a docker host gives its services the CPU, where here
# make test's other lanes beside them would keep a CPU-bound service (the saturation fault) from
# its limit.
favour_containers() {
  local pid line dir file value
  pid=$(docker inspect --format '{{.State.Pid}}' "$(gateway_id)" 2>/dev/null) || return 0
  line=$(grep -E '^[0-9]+:([^:]*,)?cpu(,[^:]*)?:' "/proc/$pid/cgroup" || true)
  if [[ -n $line ]]; then
    dir=${line##*:} file=/sys/fs/cgroup/cpu${dir%/*}/cpu.shares value=10240
  else
    line=$(grep -E '^0::' "/proc/$pid/cgroup" || true)
    dir=${line##*:} file=/sys/fs/cgroup${dir%/*}/cpu.weight value=1000
  fi
  if [[ -n $dir && ${dir%/*} != '' && -w $file ]] && echo "$value" >"$file" 2>/dev/null; then
    log "containers' CPU weight: $value ($file)"
  fi
}

cmd_up() {
  local start
  start=$(now)
  take_lock
  ensure_dockerd
  cmd_images
  ensure_prometheus
  ensure_alertmanager
  ensure_api_standin
  ensure_sshd
  ensure_postgres
  converge_stack
  log "up: rig ready in $(since "$start")s (gateway $GOOD_VERSION, Prometheus $PROM_URL," \
    "Alertmanager $AM_URL, API stand-ins $STANDIN_URL, sshd $SSHD_LISTEN)"
}

# clear: the same convergence as up (images and Prometheus are only checked when they are fine).
cmd_clear() {
  local start fault
  start=$(now)
  take_lock
  ensure_dockerd
  fault=$(current_fault)
  cmd_images
  ensure_prometheus
  ensure_alertmanager
  ensure_api_standin
  reset_api_standin
  rm -f "$INCIDENT_RECORDS"/*.json
  ensure_postgres
  converge_stack
  log "clear: ${fault:-no} fault cleared, stack healthy at $GOOD_VERSION in $(since "$start")s" \
    "(demo/rig.sh wait-clear waits for the 5xx ratio)"
}

# deploy_gateway VERSION: recreate only inference-gateway at that tag (compose defaults otherwise).
# deploy_gateway VERSION [crashing]: crashing, a build that exits at start: its /health is not awaited.
deploy_gateway() {
  local version=$1 crashing=${2:-} image prev start stamp epoch
  image="sre-demo/inference-gateway:$version"
  if ! docker image inspect "$image" >/dev/null 2>&1; then
    die "image $image does not exist; available: $(docker images sre-demo/inference-gateway --format '{{.Tag}}' | sort | paste -sd' ' -)"
  fi
  prev=$(gateway_image)
  [[ -n $prev ]] || die "inference-gateway is not running; run demo/rig.sh up first"
  start=$(now)
  stamp=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
  epoch=$(date +%s.%N)
  drop_mitigations
  log "deploy inference-gateway: ${prev##*:} -> $version"
  compose GATEWAY_VERSION="$version" -- up -d --no-deps inference-gateway 2>&1 | sed 's/^/  /'
  [[ -n $crashing ]] || "${HELPER[@]}" wait-http --timeout 30 --quiet --contains "\"version\": \"${version#v}\"" \
    http://127.0.0.1:8000/health || die "inference-gateway $version did not answer /health within 30 s"
  record_deploy "$version" "${prev##*:}" "$stamp" "$epoch"
  log "deployed inference-gateway $version at $stamp (previous ${prev##*:}; took $(since "$start")s)"
}

cmd_deploy() {
  local version=${1:-}
  [[ $version =~ ^v[0-9]+(\.[0-9]+)*$ ]] || die "usage: demo/rig.sh deploy VERSION (e.g. v1.2.3)"
  take_lock
  ensure_dockerd
  deploy_gateway "$version"
  # A rollback by hand ends the faults of a deploy.
  if [[ $version == "$GOOD_VERSION" && $(current_fault) =~ ^(bad|slow|crash)-deploy$ ]]; then rm -f "$FAULT_FILE"; fi
}

# ----------------------------------------------------------------------------- faults

# record_fault FAULT STAMP EPOCH CONTAINER RESTARTS: what wait-fault and status read.
record_fault() {
  printf '{"fault": "%s", "time": "%s", "epoch": %s, "container": "%s", "restart_count": %s}\n' \
    "$1" "$2" "$3" "$4" "$5" >"$FAULT_FILE.tmp"
  mv -f "$FAULT_FILE.tmp" "$FAULT_FILE"
}

inject_port_conflict() {
  local pid deadline
  pid=$(read_pid "$SQUATTER_PIDFILE" port-squatter)
  if [[ -z $pid ]]; then
    log "stopping inference-gateway (the container is kept: no recreate)"
    compose -- stop -t 3 inference-gateway 2>&1 | sed 's/^/  /'
    "${HELPER[@]}" check-ports 8000=none >/dev/null 2>&1 ||
      die "port 8000 is still held after stopping inference-gateway"
    pid=$("${HELPER[@]}" spawn --log "$SQUATTER_LOG" --pidfile "$SQUATTER_PIDFILE" -- \
      "$PY" "$DEMO_DIR/lib/port_squatter.py" --host 127.0.0.1 --port 8000)
    deadline=$((SECONDS + 10))
    until ss -Hltnp 'sport = :8000' 2>/dev/null | grep -q "pid=$pid,"; do
      if ! pid_alive "$pid"; then
        tail -n 5 "$SQUATTER_LOG" >&2 || true
        die "port-squatter (pid $pid) exited; see $SQUATTER_LOG"
      fi
      ((SECONDS < deadline)) || die "port-squatter (pid $pid) does not listen on 127.0.0.1:8000 after 10 s"
      sleep 0.2
    done
    log "port-squatter (pid $pid, pidfile $SQUATTER_PIDFILE) holds 127.0.0.1:8000"
  else
    log "port-squatter already holds 127.0.0.1:8000 (pid $pid)"
  fi
  log "starting inference-gateway again: it cannot bind 127.0.0.1:8000"
  compose -- start inference-gateway 2>&1 | sed 's/^/  /'
}

cmd_inject() {
  local fault=${1:-} current stamp epoch id restarts
  [[ " ${FAULTS[*]} " == *" $fault "* && -n $fault ]] ||
    die "usage: demo/rig.sh inject FAULT (one of: ${FAULTS[*]})"
  take_lock
  ensure_dockerd
  [[ -n $(gateway_id) ]] || die "the stack is not up; run demo/rig.sh up first"
  current=$(current_fault)
  if [[ -n $current && $current != "$fault" ]]; then
    log "fault $current is injected: clearing it first"
    converge_stack
  elif [[ $current == "$fault" ]]; then
    log "fault $fault is already injected: applying it again (no change if it holds)"
  fi
  id=$(gateway_id)
  restarts=$(docker inspect -f '{{.RestartCount}}' "$id")
  stamp=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
  epoch=$(date +%s.%N)
  case $fault in
    bad-deploy) deploy_gateway "$BAD_VERSION" ;;
    slow-deploy) deploy_gateway "$SLOW_VERSION" ;;
    crash-deploy)
      deploy_gateway "$CRASH_VERSION" crashing
      id=$(gateway_id)
      restarts=0 ;;
    endpoint) "${HELPER[@]}" admin inference-gateway predict_v2 on || die "could not switch predict-v2 on" ;;
    dependency) "${HELPER[@]}" admin model-service slow_responses on || die "could not slow model-service down" ;;
    # Two causes at once: model-service turns slow (504s), then a bad version is deployed 3 s later (500s).
    two-causes)
      "${HELPER[@]}" admin model-service slow_responses on || die "could not slow model-service down"
      sleep 3
      deploy_gateway "$BAD_VERSION" ;;
    dependency-down)
      log "stopping model-service"
      compose -- stop -t 3 model-service 2>&1 | sed 's/^/  /' ;;
    saturation) "${HELPER[@]}" admin inference-gateway cpu_saturation on || die "could not switch cpu_saturation on" ;;
    memory) "${HELPER[@]}" admin inference-gateway memory_growth on || die "could not switch memory_growth on" ;;
    # Poisoned state: saved to the state file, then the gateway exits 1, and at every start again.
    startup-crash) "${HELPER[@]}" admin inference-gateway startup_crash on || die "could not switch startup_crash on" ;;
    hang) "${HELPER[@]}" admin inference-gateway hang on || die "could not switch hang on" ;;
    crash)
      log "recreating inference-gateway with MODEL_SERVICE_URL=$BAD_MODEL_SERVICE_URL"
      compose GATEWAY_VERSION="$GOOD_VERSION" GATEWAY_MODEL_SERVICE_URL="$BAD_MODEL_SERVICE_URL" -- \
        up -d --no-deps inference-gateway 2>&1 | sed 's/^/  /'
      id=$(gateway_id)
      restarts=0 ;;
    port-conflict)
      inject_port_conflict
      restarts=0 ;;
    db-idle-tx)
      log "starting the report job $REPORT_JOB: it opens a transaction on every order and leaves it idle"
      docker run -d --name "$REPORT_JOB" --network host --label io.sre-demo.job=nightly-report \
        -e REPORT_DSN="host=127.0.0.1 port=$PG_PORT dbname=shop user=reports password=reports-demo" \
        sre-demo/orders:v1.0.0 python3 /app/report_job.py >/dev/null ;;
  esac
  if [[ $current != "$fault" ]]; then
    record_fault "$fault" "$stamp" "$epoch" "$id" "$restarts"
    log "injected $fault at $stamp (demo/rig.sh wait-fault $fault waits until it shows; demo/rig.sh clear undoes it)"
  else
    log "$fault is injected (first at $(fault_time)); applied again"
  fi
}

cmd_down() {
  local ids
  take_lock
  stop_pidfile "$SQUATTER_PIDFILE" port-squatter 10
  if docker info >/dev/null 2>&1; then
    stop_report_job
    log "compose down (project $PROJECT)"
    compose -- down --remove-orphans --timeout 5 2>&1 | sed 's/^/  /'
    ids=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")
    [[ -z $ids ]] || die "containers of project $PROJECT remain: $ids"
  else
    log "docker is not answering: no containers to remove"
  fi
  stop_pidfile "$PROM_PIDFILE" prometheus 20
  rm -f "$PROM_FINGERPRINT"
  stop_pidfile "$AM_PIDFILE" "$(basename "$(alertmanager_bin || echo alertmanager)" | cut -c1-15)" 20
  stop_pidfile "$STANDIN_PIDFILE" api-standin 10
  stop_pidfile "$SSHD_PIDFILE" sshd 10
  rm -f "$AM_FINGERPRINT" "$STANDIN_FINGERPRINT" "$SSHD_FINGERPRINT"
  stop_postgres
  if [[ -n $(read_pid "$DOCKERD_PIDFILE" dockerd) ]]; then
    stop_pidfile "$DOCKERD_PIDFILE" dockerd 30
  else
    rm -f "$DOCKERD_PIDFILE"
  fi
  rm -rf --one-file-system "${PROM_DATA:?}" "${PROM_CONF_DIR:?}" "${FAULT_DIR:?}" "${AM_DATA:?}" \
    "${AM_CONF_DIR:?}" "${PG_DATA:?}"
  rm -f "$DEPLOY_FILE" "$FAULT_FILE"
  log "down: containers removed, Prometheus, Alertmanager, the API stand-ins and sshd stopped, $PROM_DATA removed"
}

# stop/start PART: a source of the runbook going away mid-run and coming back (the fault tests).
# Prometheus keeps its data; dockerd is the one this rig started, and the demo's containers come
# back with it (restart: unless-stopped).
cmd_stop() {
  take_lock
  case ${1:-} in
    prometheus) stop_pidfile "$PROM_PIDFILE" prometheus 20 ;;
    postgres) stop_postgres ;;
    dockerd)
      [[ -n $(read_pid "$DOCKERD_PIDFILE" dockerd) ]] ||
        die "the running dockerd was not started by this rig ($DOCKERD_PIDFILE): stop it yourself"
      stop_pidfile "$DOCKERD_PIDFILE" dockerd 40 ;;
    *) die "usage: demo/rig.sh stop prometheus|postgres|dockerd" ;;
  esac
}

cmd_start() {
  take_lock
  case ${1:-} in
    prometheus) ensure_prometheus ;;
    postgres) ensure_postgres ;;
    dockerd) ensure_dockerd ;;
    *) die "usage: demo/rig.sh start prometheus|postgres|dockerd" ;;
  esac
}

cmd_check() {
  local tmp
  tmp=$(mktemp -d)
  "$PY" "$DEMO_DIR/prometheus/render_rules.py" --check
  promtool check rules "$DEMO_DIR"/prometheus/rules/*.rules.yml
  promtool test rules "$DEMO_DIR"/prometheus/tests/*.test.yml
  promtool check config "$DEMO_DIR/prometheus/prometheus.yml"
  mkdir -p "$tmp/rules"
  cp "$DEMO_DIR/prometheus/prometheus.yml" "$tmp/"
  render_demo_rules "$tmp/rules"
  promtool check rules "$tmp"/rules/*.rules.yml
  promtool check config "$tmp/prometheus.yml"
  amtool check-config "$DEMO_DIR/alertmanager/alertmanager.yml"
  rm -rf "$tmp"
  compose -- config -q
  "$PY" -c 'import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]' "$DEMO_DIR"/app/*.py "$DEMO_DIR"/lib/*.py
  log "check: OK"
}

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  case $cmd in
    up) cmd_up "$@" ;;
    images) take_lock; cmd_images "$@" ;;
    deploy) cmd_deploy "$@" ;;
    inject) cmd_inject "$@" ;;
    clear) cmd_clear ;;
    wait-fault)
      [[ " ${FAULTS[*]} " == *" ${1:-} "* && -n ${1:-} && ${2:-180} =~ ^[0-9]+$ ]] ||
        die "usage: demo/rig.sh wait-fault FAULT [TIMEOUT_SECONDS] (FAULT: ${FAULTS[*]})"
      "${HELPER[@]}" wait-fault "$1" "${2:-180}" --window "$DEMO_WINDOW" --fault-file "$FAULT_FILE" \
        --slow-version "$SLOW_VERSION" ;;
    wait-baseline)
      [[ ${1:-} =~ ^[0-9]+$ ]] || die "usage: demo/rig.sh wait-baseline SECONDS"
      "${HELPER[@]}" wait-baseline "$1" --version "$GOOD_VERSION" ;;
    wait-alert | wait-clear)
      [[ ${1:-120} =~ ^[0-9]+$ ]] || die "usage: demo/rig.sh $cmd [TIMEOUT_SECONDS]"
      "${HELPER[@]}" "$cmd" "${1:-120}" --window "$DEMO_WINDOW" --deploy-file "$DEPLOY_FILE" ;;
    status)
      "${HELPER[@]}" status --window "$DEMO_WINDOW" --deploy-file "$DEPLOY_FILE" --fault-file "$FAULT_FILE"
      alertmanager_status ;;
    wait-resolved)
      [[ ${1:-360} =~ ^[0-9]+$ ]] || die "usage: demo/rig.sh wait-resolved [TIMEOUT_SECONDS]"
      "${HELPER[@]}" wait-resolved "${1:-360}" ;;
    wait-page)
      [[ ${1:-60} =~ ^[0-9]+$ ]] || die "usage: demo/rig.sh wait-page [TIMEOUT_SECONDS]"
      "${HELPER[@]}" wait-page "${1:-60}" ;;
    told) "${HELPER[@]}" told ;;
    check) cmd_check ;;
    stop) cmd_stop "$@" ;;
    start) cmd_start "$@" ;;
    query) [[ $# -eq 1 ]] || die "usage: demo/rig.sh query PROMQL"; "${HELPER[@]}" query "$1" ;;
    down) cmd_down ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
