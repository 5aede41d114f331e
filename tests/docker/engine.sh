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
# Needs root. Installs docker.io, busybox-static, gcc and libc6-dev with apt when they are missing.
set -euo pipefail
DK=${LAB_DOCKER_DIR:-/tmp/lab-docker}
NS=${LAB_DOCKER_NETNS:-labdk}
IMAGE=${LAB_TEST_IMAGE:-lab-test/busybox:1}
# A C compiler image for the test of a builder stage that compiles (as the lambda stack's scheduler
# image compiles lab): gcc and libc6-dev with every installed package they depend on, copied from
# this machine's Debian packages (nothing can be pulled), plus busybox for a shell.
COMPILER_IMAGE=${LAB_TEST_COMPILER_IMAGE:-lab-test/gcc:1}
export DOCKER_HOST=unix://$DK/docker.sock

log() { echo "engine.sh: $*" >&2; }

need_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  dpkg -s gcc libc6-dev >/dev/null 2>&1 || missing+=(gcc libc6-dev)
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

import_compiler_image() {
  docker image inspect "$COMPILER_IMAGE" >/dev/null 2>&1 && return 0
  local root packages p f t
  root=$(mktemp -d)
  # The installed part of gcc's and libc6-dev's dependency closure (apt's package lists are needed
  # for it: a machine whose lists were cleaned gets them first).
  closure() {
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances gcc libc6-dev 2>/dev/null | grep -v '^ \|<' | sort -u
  }
  packages=$(closure)
  if ! grep -qx gcc <<<"$packages"; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    packages=$(closure)
  fi
  # A usr-merged tree (Debian 12: /bin, /lib, /lib64 and /sbin are links into /usr), so the
  # packages' /lib paths and /usr/lib paths land in one place and the loader is where ELF wants it.
  for d in bin lib lib64 sbin; do mkdir -p "$root/usr/$d"; ln -s "usr/$d" "$root/$d"; done
  for p in $packages; do
    dpkg -s "$p" >/dev/null 2>&1 && dpkg -L "$p"
  done | sort -u | while read -r f; do
    if [ -f "$f" ]; then
      t=${f#/}
      case "$t" in bin/* | lib/* | lib64/* | sbin/*) t="usr/$t" ;; esac
      mkdir -p "$root/$(dirname "$t")"
      cp -a "$f" "$root/$t"
    fi
  done
  if [ ! -e "$root/usr/bin/gcc" ] || ! compgen -G "$root/usr/lib/*-linux-gnu/libc.a" >/dev/null; then
    log "could not assemble the gcc image from the installed packages (${packages:-none found}); is libc6-dev installed?"
    rm -rf "$root"
    exit 1
  fi
  cp /bin/busybox "$root/usr/bin/"
  for a in $("$root/usr/bin/busybox" --list); do [ -e "$root/usr/bin/$a" ] || ln -s busybox "$root/usr/bin/$a"; done
  mkdir -p "$root/tmp" "$root/etc" && chmod 1777 "$root/tmp"
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  tar -C "$root" -c . | docker import -c 'CMD ["/bin/sh"]' -c 'ENV PATH=/usr/bin:/bin' - "$COMPILER_IMAGE" >/dev/null
  rm -rf "$root"
}

start() {
  need_packages
  if running; then
    import_image
    import_compiler_image
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
  import_compiler_image
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
