/**
 * The commented example `unifi-backup config example` prints. Every value is a real one, so the
 * example passes `config check` as it is (test/config/example.test.ts).
 */
export const configExample = `# /etc/unifi-backup/config.yaml — every key is optional; flags on the command line win.
# Check it with: unifi-backup config check [--config FILE]

# libvirt connection URI (flag: --connect; env: LIBVIRT_DEFAULT_URI)
connect: qemu:///system

# Where per-domain locks live (flag: --lock-dir; env: UNIFI_BACKUP_LOCK_DIR); root's alone (0700)
lock-dir: /run/unifi-backup

# Where journals and state live (flag: --state-dir; env: UNIFI_BACKUP_STATE_DIR)
state-dir: /var/lib/unifi-backup

# backup incr / run incr do a diff instead when the chain would hold more than this many incr
# layers (flag: --max-incr; env: UNIFI_BACKUP_MAX_INCR)
max-incr: 6

# Overlays of block-device disks (<disk type='block'>, an LVM volume) live here, not in /dev/VG;
# per domain under domains: (flag: --overlay-dir)
# overlay-dir: /var/lib/unifi-backup/overlays
# domains:
#   web1:
#     overlay-dir: /srv/overlays/web1

# The restic repository used by \`run\`, \`restore --from restic\` and \`verify --restic\`.
# Without this section restic's own environment is used (RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE, …).
restic:
  repository: /srv/restic/kvm            # or sftp:backup@nas:/srv/restic, s3:…, rest:…
  password-file: /etc/unifi-backup/restic-password
  # password-command: pass show restic/kvm
  # host: kvm1                           # restic --host (default: this machine's name)
  # options:                             # restic -o KEY=VALUE
  #   - sftp.command=ssh -p 2222 backup@nas -s sftp
  # env:                                 # extra environment for restic (treated as secrets)
  #   AWS_ACCESS_KEY_ID: AKIA…
  # cache-dir: /var/cache/restic
  # lock-wait: 300                       # seconds to wait for a lock held by another host's restic

# restic forget rules, applied per domain after each \`run\`.
retention:
  keep-daily: 7
  keep-weekly: 4
  keep-monthly: 6
  # keep-last: 10
  # keep-hourly: 24
  # keep-yearly: 2
  # keep-within: 1m15d                   # years, months, days, hours: 1y5m7d2h
  prune: true                            # also prune when snapshots were removed

# Notifications after each \`run\` (aliases from a notify.yaml, or given inline).
notify:
  config: /etc/unifi-backup/notify.yaml
  on-failure: [admins]
  on-success: []
  # environment: [SMTP_PASSWORD]         # variables notify files may use besides UNIFI_BACKUP_*, NOTIFY_*
  # aliases:
  #   admins:
  #     url: smtp://user:pass@mail.example.com:587/?from=kvm@example.com&to=admin@example.com
  # templates:
  #   failure:
  #     title: "{{domain}}: {{verb}} {{level}} FAILED on {{host}}"

# How long to wait for what can hang, in seconds; each ends in an error naming the domain, the VM
# left running. The defaults are shown.
# timeouts:
#   virsh: 120                           # one virsh query or command (libvirtd hung)
#   guest-agent: 10                      # the guest agent's answer before a --quiesce snapshot
#   block-job-stall: 600                 # a block pull/commit whose progress does not move is aborted

# When \`status\` (and its exit code, and the metrics' verdict) calls a domain stale, failing or in
# need of attention. The defaults are shown.
# status:
#   stale-after: 26h                     # no successful backup (or restic snapshot) for longer: stale
#   failures: 1                          # this many failed backups in a row: failing
#   maintenance-after: 24h               # a maintenance window open longer: attention
#   max-chain: 20                        # a chain longer than this: attention (default: no limit)
`;
