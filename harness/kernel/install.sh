#!/bin/sh
# Installs what the kernel-peer harness (harness/kernel/*.ts) needs: qemu (TCG), static busybox, kmod,
# xz, and the guest kernel: the linux-image-<version> Debian's linux-image-amd64 depends on (the
# harness boots that one, whatever else /boot holds; see resolveGuestKernel in initramfs.ts).
# Idempotent; returns at once when everything is present. Needs root and the Debian package mirror.
set -eu

need=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
# busybox-static replaces Debian's dynamically linked busybox package.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" || need="$need busybox-static"
command -v modprobe >/dev/null 2>&1 || need="$need kmod"
command -v xz >/dev/null 2>&1 || need="$need xz-utils"
command -v wg >/dev/null 2>&1 || need="$need wireguard-tools"
command -v socat >/dev/null 2>&1 || need="$need socat"
[ -x /usr/bin/ping ] || [ -x /bin/ping ] || need="$need iputils-ping"
[ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || [ -x /bin/ip ] || need="$need iproute2"

reinstall=""
# shellcheck disable=SC2016
kver=$(dpkg-query -W -f='${Status}|${Depends}' linux-image-amd64 2>/dev/null |
  sed -n 's/^install ok installed|.*linux-image-\([0-9][^ ,|]*\).*/\1/p')
if [ -z "$kver" ]; then
  need="$need linux-image-amd64"
elif [ ! -e "/boot/vmlinuz-$kver" ] || [ ! -d "/lib/modules/$kver/kernel/drivers/net/wireguard" ]; then
  # Installed per dpkg but its files are gone: put them back.
  reinstall="linux-image-$kver"
fi

if [ -n "$need" ]; then
  echo "harness/kernel/install.sh: installing$need" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_opts="-o DPkg::Lock::Timeout=300 -y --no-install-recommends"
  # shellcheck disable=SC2086
  apt-get $apt_opts install $need || { apt-get -o DPkg::Lock::Timeout=300 update && apt-get $apt_opts install $need; }
fi
if [ -n "$reinstall" ]; then
  echo "harness/kernel/install.sh: reinstalling $reinstall (files missing)" >&2
  apt-get -o DPkg::Lock::Timeout=300 -y --no-install-recommends install --reinstall "$reinstall"
fi
echo "harness/kernel/install.sh: ok" >&2
