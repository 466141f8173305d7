#!/bin/sh
# Installs what the kernel-peer harness (harness/kernel/*.ts) needs: qemu (TCG), static busybox, kmod,
# cpio, xz, and a Debian kernel with the wireguard/fou/ipip/sit modules if none is installed.
# Idempotent; returns at once when everything is present. Needs root and the Debian package mirror.
set -eu

need=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
# busybox-static replaces Debian's dynamically linked busybox package.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" || need="$need busybox-static"
command -v modprobe >/dev/null 2>&1 || need="$need kmod"
command -v cpio >/dev/null 2>&1 || need="$need cpio"
command -v xz >/dev/null 2>&1 || need="$need xz-utils"
command -v wg >/dev/null 2>&1 || need="$need wireguard-tools"
command -v socat >/dev/null 2>&1 || need="$need socat"
[ -x /usr/bin/ping ] || [ -x /bin/ping ] || need="$need iputils-ping"
[ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || [ -x /bin/ip ] || need="$need iproute2"

have_kernel=no
for k in /boot/vmlinuz-*; do
  [ -e "$k" ] || continue
  ver=${k#/boot/vmlinuz-}
  if [ -d "/usr/lib/modules/$ver/kernel/drivers/net/wireguard" ] || [ -d "/lib/modules/$ver/kernel/drivers/net/wireguard" ]; then
    have_kernel=yes
  fi
done
[ "$have_kernel" = yes ] || need="$need linux-image-amd64"

if [ -n "$need" ]; then
  echo "harness/kernel/install.sh: installing$need" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_opts="-o DPkg::Lock::Timeout=300 -y --no-install-recommends"
  # shellcheck disable=SC2086
  apt-get $apt_opts install $need || { apt-get -o DPkg::Lock::Timeout=300 update && apt-get $apt_opts install $need; }
fi
echo "harness/kernel/install.sh: ok" >&2
