#!/usr/bin/env bash
# Runs a command against a libvirtd of its own: a private mount namespace with its own /run,
# /etc/libvirt (a copy), /var/lib/libvirt and /var/cache/libvirt, where virtlogd and libvirtd are
# started for the command and stopped after it. Integration files run in two such streams at once
# without seeing each other's domains (the tool fails closed on any unreadable chain of any domain,
# and the fault suite restarts libvirtd). Usage: isolated.sh COMMAND [ARG...]
set -euo pipefail
[[ $# -gt 0 ]] || { echo "usage: isolated.sh COMMAND [ARG...]" >&2; exit 2; }

if [[ ${UNIFI_ISOLATED_INSIDE:-} != 1 ]]; then
  exec unshare --mount --propagation private -- env UNIFI_ISOLATED_INSIDE=1 bash "$0" "$@"
fi

scratch=$(mktemp -d /var/tmp/unifi-backup-libvirt-XXXXXX)
mkdir -p "$scratch"/{etc,lib,cache}
cp -a /etc/libvirt/. "$scratch/etc/"
rm -f "$scratch"/etc/qemu/*.xml "$scratch"/etc/qemu/autostart/*.xml
mount -t tmpfs -o mode=0755 tmpfs /run
mount --bind "$scratch/etc" /etc/libvirt
mount --bind "$scratch/lib" /var/lib/libvirt
mount --bind "$scratch/cache" /var/cache/libvirt
mkdir -p /run/lock /var/lib/libvirt/{qemu,images,swtpm}

stop() {
  for domain in $(virsh -c qemu:///system list --name 2>/dev/null || true); do
    virsh -c qemu:///system destroy "$domain" >/dev/null 2>&1 || true
  done
  for pidfile in /run/libvirtd.pid /run/virtlogd.pid; do
    [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  sleep 1
  rm -rf -- "$scratch"
}
trap stop EXIT

virtlogd -d
libvirtd -d
for _ in $(seq 100); do
  virsh -c qemu:///system version >/dev/null 2>&1 && break
  sleep 0.1
done
virsh -c qemu:///system version >/dev/null
"$@"
