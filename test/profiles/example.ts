import { defaultRetention } from '../../src/profiles/model.js';
import type { DomainSource, ProfileSettings } from '../../src/profiles/model.js';

/** The original generator's example: `-i "Mon..Fri 8,12,16,20:00" -d "Mon..Fri 21:00" -f "Sat 20:00" MY-VM-NAME`. */
export const originalExample: ProfileSettings = {
  schedules: { incr: 'Mon..Fri 8,12,16,20:00', diff: 'Mon..Fri 21:00', full: 'Sat 20:00' },
  repository: '/srv/restic',
  passwordFile: '/etc/unifi-backup/restic.password',
  retention: defaultRetention,
  notify: { config: '/etc/unifi-backup/notify.yaml', alias: 'smtp' },
  program: 'unifi-backup',
  lockDir: '/run/unifi-backup',
  logDir: '/var/log/unifi-backup',
};

export const myVm: DomainSource = { domain: 'MY-VM-NAME', source: '/storage/kvm/instances/MY-VM-NAME' };
