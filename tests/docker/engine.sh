#!/usr/bin/env bash
# A throwaway Docker engine for tests/docker_stack.rs, isolated in its own network namespace:
# the host gets no bridge, no iptables rule and no ip_forward change, and containers have no
# route off the machine (so pulls fail at once, as the pull-policy tests expect).
#
#   tests/docker/engine.sh start   # idempotent; prints the DOCKER_HOST to use
#   tests/docker/engine.sh stop    # stops dockerd, unmounts, removes its data and the netns
#   tests/docker/engine.sh env     # prints `export DOCKER_HOST=...`
#
# Published ports live on the namespace's loopback: run the test binary inside it with
#   nsenter --net=/run/netns/$LAB_DOCKER_NETNS <test binary>
# Needs root. Installs docker.io and busybox-static with apt when they are missing.
set -euo pipefail
DK=${LAB_DOCKER_DIR:-/tmp/lab-docker}
NS=${LAB_DOCKER_NETNS:-labdk}
IMAGE=${LAB_TEST_IMAGE:-lab-test/busybox:1}
export DOCKER_HOST=unix://$DK/docker.sock

log() { echo "engine.sh: $*" >&2; }

need_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

running() {
  [ -f "$DK/dockerd.pid" ] && kill -0 "$(cat "$DK/dockerd.pid")" 2>/dev/null && docker version >/dev/null 2>&1
}

import_image() {
  docker image inspect "$IMAGE" >/dev/null 2>&1 && return 0
  local root; root=$(mktemp -d)
  mkdir -p "$root/bin" "$root/etc" "$root/www" "$root/tmp"
  cp /bin/busybox "$root/bin/"
  for a in $("$root/bin/busybox" --list); do [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  echo ok >"$root/www/index.html"
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
  rm -rf "$root"
}

start() {
  need_packages
  if running; then
    import_image
    echo "$DOCKER_HOST"
    return 0
  fi
  mkdir -p "$DK/data" "$DK/exec"
  [ -e "/run/netns/$NS" ] || ip netns add "$NS"
  ip -n "$NS" link set lo up
  # setsid + exec: the recorded PID is dockerd itself, in its own process group.
  setsid sh -c 'exec nsenter --net=/run/netns/"$0" dockerd --data-root "$1/data" --exec-root "$1/exec" \
      --host "$2" --pidfile "$1/dockerd.pid" --storage-driver=vfs --iptables=false --ip6tables=false' \
      "$NS" "$DK" "$DOCKER_HOST" >"$DK/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 150); do
    running && break
    sleep 0.1
  done
  if ! running; then
    log "dockerd did not start; its log:"
    tail -n 30 "$DK/dockerd.log" >&2
    exit 1
  fi
  import_image
  echo "$DOCKER_HOST"
}

stop() {
  if [ -f "$DK/dockerd.pid" ]; then
    local pid; pid=$(cat "$DK/dockerd.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
  fi
  # Deepest mounts first (overlay/vfs layers, netns files, shm).
  awk -v d="$DK/" 'index($2,d)==1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  rm -rf "$DK/data" "$DK/exec" "$DK/docker.sock" "$DK/dockerd.pid"
  if [ -e "/run/netns/$NS" ]; then ip netns del "$NS"; fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "export DOCKER_HOST=$DOCKER_HOST" ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
