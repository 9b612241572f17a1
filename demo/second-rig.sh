#!/usr/bin/env bash
# demo/second-rig.sh: a second demo rig beside the first, in namespaces of its own, so that test
# suites that each need a whole rig (make test: the fault tests and the scenarios) run at the same
# time as the first rig's suites.
#
# The rig is demo/rig.sh unchanged: its network namespace has a loopback of its own (the same
# ports, the same inventories), and its mount namespace puts directories of its own over the
# rig's and the runbook's state (/var/lib/sre-demo, /var/lib/sre-runbooks, /var/log/sre-demo), the
# Docker engine's data (/var/lib/docker), /run (pid files, sockets) and Ansible's SSH control
# sockets. A process holds the namespaces (sleep, its pid in $HOLDER_PIDFILE); commands enter them
# with nsenter. The demo images come from the first engine (docker save | docker load), by image id.
#
#   demo/second-rig.sh up            namespaces, dockerd, the images, demo/rig.sh up
#   demo/second-rig.sh run CMD...    run CMD inside (cwd and environment kept)
#   demo/second-rig.sh down          demo/rig.sh down inside, then the holder ends (its data kept)
set -euo pipefail

DEMO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT=/var/lib/sre-demo-second
HOLDER_PIDFILE=/run/sre-demo-second.pid
# host path -> the path it is mounted over, inside
MOUNTS=(
  "$ROOT/docker=/var/lib/docker"
  "$ROOT/sre-demo=/var/lib/sre-demo"
  "$ROOT/sre-runbooks=/var/lib/sre-runbooks"
  "$ROOT/log=/var/log/sre-demo"
  "$ROOT/ansible-cp=$HOME/.ansible/cp"
)

log() { printf '[second rig %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf 'second rig: ERROR: %s\n' "$*" >&2; exit 1; }

holder_pid() {
  local pid
  pid=$(cat "$HOLDER_PIDFILE" 2>/dev/null) || return 0
  [[ -r /proc/$pid/ns/net && $(readlink "/proc/$pid/ns/net") != "$(readlink /proc/self/ns/net)" ]] &&
    grep -qx 'sre-demo-second' "/proc/$pid/root/run/.holder" 2>/dev/null && echo "$pid"
  return 0
}

inside() {
  local pid
  pid=$(holder_pid)
  [[ -n $pid ]] || die "the second rig is not up (demo/second-rig.sh up)"
  nsenter --target "$pid" --mount --net --wd="$PWD" -- "$@"
}

start_holder() {
  local pair mounts='' pid deadline
  for pair in "${MOUNTS[@]}"; do
    mkdir -p "${pair%%=*}" "${pair#*=}"
    mounts+="mount --bind '${pair%%=*}' '${pair#*=}' && "
  done
  # The rig's sshd keeps the first rig's host key, so that known_hosts files hold for both.
  if [[ -d /var/lib/sre-demo/ssh && ! -e $ROOT/sre-demo/ssh ]]; then
    cp -a /var/lib/sre-demo/ssh "$ROOT/sre-demo/ssh"
  fi
  # The first engine's container mounts, copied into the new namespace, are dropped there first.
  setsid unshare --mount --net --propagation private -- bash -c \
    "umount --recursive --lazy /var/lib/docker 2>/dev/null; $mounts mount -t tmpfs -o mode=755 tmpfs /run && ip link set lo up &&
     echo sre-demo-second > /run/.holder && exec sleep infinity" \
    >"$ROOT/holder.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$HOLDER_PIDFILE"
  deadline=$((SECONDS + 10))
  until [[ -n $(holder_pid) ]]; do
    kill -0 "$pid" 2>/dev/null || die "the namespaces could not be made: $(cat "$ROOT/holder.log")"
    ((SECONDS < deadline)) || die "the namespaces were not ready within 10 s (pid $pid)"
    sleep 0.1
  done
  log "namespaces held by pid $pid (loopback and state of their own)"
}

# The first engine's demo images, by id, into the second engine when it lacks them.
copy_images() {
  local wanted have names
  wanted=$(docker images --filter 'reference=sre-demo/*' --format '{{.Repository}}:{{.Tag}} {{.ID}}' |
    grep -v '^sre-demo/prometheus:' | sort)
  [[ -n $wanted ]] || die "the first rig has no demo images: run demo/rig.sh up first"
  have=$(inside docker images --filter 'reference=sre-demo/*' --format '{{.Repository}}:{{.Tag}} {{.ID}}' | sort)
  if [[ $(comm -23 <(echo "$wanted") <(echo "$have")) == '' ]]; then
    log "images: all $(wc -l <<<"$wanted") there"
    return
  fi
  mapfile -t names < <(cut -d' ' -f1 <<<"$wanted")
  docker save "${names[@]}" | inside docker load -q >/dev/null
  log "images copied from the first engine: $(wc -l <<<"$wanted")"
}

cmd_up() {
  [[ $(id -u) == 0 ]] || die "run as root (namespaces, mounts, dockerd)"
  [[ -n $(holder_pid) ]] || start_holder
  inside "$DEMO_DIR/rig.sh" start dockerd
  copy_images
  inside "$DEMO_DIR/rig.sh" up
}

cmd_down() {
  local pid
  pid=$(holder_pid)
  [[ -n $pid ]] || { log "not up"; return; }
  inside "$DEMO_DIR/rig.sh" down
  kill "$pid"
  rm -f "$HOLDER_PIDFILE"
  log "down (its data kept in $ROOT)"
}

case ${1:-} in
  up) cmd_up ;;
  run) shift; [[ $# -gt 0 ]] || die "usage: demo/second-rig.sh run CMD [ARGS]"; inside "$@" ;;
  down) cmd_down ;;
  *) die "usage: demo/second-rig.sh up|run CMD...|down" ;;
esac
