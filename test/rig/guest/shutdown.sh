#!/bin/sh
# Installed as /sbin/shutdown: qemu-ga's guest-shutdown runs "shutdown -h -P|-r|-H +0 ...", busybox
# has no shutdown applet, and PID 1 is not busybox init. Returns at once so qemu-ga can answer first.
action=poweroff
for arg; do
  case $arg in
  -r) action=reboot ;;
  -H) action=halt ;;
  esac
done
(
  sleep 1
  for pidfile in /run/writer.*.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  done
  usleep 300000
  sync
  for mnt in /mnt/*; do
    grep -q " $mnt " /proc/mounts && { umount "$mnt" || mount -o remount,ro "$mnt"; }
  done
  echo "guest: $action"
  $action -f
) </dev/null >/dev/console 2>&1 &
exit 0
