#!/bin/sh
# Installs and starts what the container-peer harness (harness/containers/*.ts) needs: docker.io
# (dockerd) and debootstrap. Starts dockerd in the background when /var/run/docker.sock is absent and
# waits (bounded) until it answers. Idempotent; returns at once when dockerd already runs.
set -eu

need=""
command -v dockerd >/dev/null 2>&1 || need="$need docker.io"
command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
if [ -n "$need" ]; then
  echo "harness/containers/install.sh: installing$need" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_opts="-o DPkg::Lock::Timeout=300 -y --no-install-recommends"
  # shellcheck disable=SC2086
  apt-get $apt_opts install $need || { apt-get -o DPkg::Lock::Timeout=300 update && apt-get $apt_opts install $need; }
fi

if ! docker info >/dev/null 2>&1; then
  if [ ! -S /var/run/docker.sock ] || ! pgrep -x dockerd >/dev/null 2>&1; then
    echo "harness/containers/install.sh: starting dockerd" >&2
    mkdir -p /var/log
    # dockerd outlives this script, so it must not inherit its descriptors: a caller's
    # `flock /tmp/wgslirpy-interop.lock …` passes its lock fd down, and dockerd (and containerd)
    # would hold that lock for as long as they run. bash closes every fd above 2 first.
    # shellcheck disable=SC2016
    nohup bash -c 'for f in /proc/$$/fd/*; do n=${f##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done; exec dockerd' \
      >/var/log/wgslirpy-dockerd.log 2>&1 </dev/null &
  fi
  i=0
  until docker info >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 120 ]; then
      echo "harness/containers/install.sh: dockerd did not come up within 60 s" >&2
      tail -n 30 /var/log/wgslirpy-dockerd.log >&2 || true
      exit 1
    fi
    sleep 0.5
  done
fi
echo "harness/containers/install.sh: ok" >&2
