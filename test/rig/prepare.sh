#!/usr/bin/env bash
# Makes this machine ready for the real-libvirt tests and the demo: Debian packages, running
# virtlogd/libvirtd (no systemd here), node_modules and the test guest. Idempotent; fast when ready.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

rig=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
project=$(cd "$rig/../.." && pwd)
packages=(libvirt-daemon-system libvirt-daemon-system-sysv libvirt-clients qemu-system-x86 qemu-utils
  busybox-static qemu-guest-agent e2fsprogs cpio util-linux restic openssh-server rclone
  systemd groff-base prometheus prometheus-node-exporter fdisk mount ovmf swtpm swtpm-tools)

say() { echo "prepare: $*"; }

[[ $(id -u) == 0 ]] || { echo "prepare: run me as root (libvirt's system daemon, apt-get)" >&2; exit 1; }

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f '${db:Status-Status}' "$package" 2>/dev/null || true)
  [[ $status == installed ]] || missing+=("$package")
done
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! pidof virtlogd >/dev/null; then
  say "starting virtlogd"
  virtlogd -d
fi
if ! pidof libvirtd >/dev/null; then
  say "starting libvirtd"
  libvirtd -d
fi
for _ in $(seq 100); do
  virsh -c qemu:///system version >/dev/null 2>&1 && break
  sleep 0.2
done
virsh -c qemu:///system version >/dev/null || { echo "prepare: libvirtd does not answer" >&2; exit 1; }

# CI owns its machine: throwaway domains an earlier, killed run left behind would otherwise make
# every purge keep its files (a chain that cannot be read may reference anything).
if [[ ${CI:-} == true ]]; then
  for domain in $(virsh -c qemu:///system list --all --name | grep -E '^(ubt-|unifi-demo-)' || true); do
    say "removing leftover test domain $domain"
    virsh -c qemu:///system destroy "$domain" >/dev/null 2>&1 || true
    virsh -c qemu:///system undefine "$domain" --nvram --checkpoints-metadata --snapshots-metadata >/dev/null 2>&1 ||
      virsh -c qemu:///system undefine "$domain" --checkpoints-metadata --snapshots-metadata >/dev/null 2>&1 || true
  done
  # A config file libvirt left behind for a test domain it no longer knows would bring that domain
  # back at the next libvirtd restart (the fault suite restarts it), its files long gone.
  for config in /etc/libvirt/qemu/ubt-*.xml /etc/libvirt/qemu/unifi-demo-*.xml; do
    [[ -e $config ]] || continue
    name=$(basename "$config" .xml)
    if ! virsh -c qemu:///system dominfo --domain "$name" >/dev/null 2>&1; then
      say "removing the stale config of test domain $name"
      rm -f -- "$config"
    fi
  done
fi

if [[ ! -d $project/node_modules ]]; then
  say "npm ci"
  (cd "$project" && npm ci --no-audit --no-fund)
fi

bash "$rig/build-guest.sh"
say "ready"
