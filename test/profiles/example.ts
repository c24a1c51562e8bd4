import { defaultRetention } from '../../src/profiles/model.js';
import type { ProfileSettings } from '../../src/profiles/model.js';

/** The original generator's example: `-i "Mon..Fri 8,12,16,20:00" -d "Mon..Fri 21:00" -f "Sat 20:00" MY-VM-NAME`. */
export const originalExample: ProfileSettings = {
  schedules: { incr: 'Mon..Fri 8,12,16,20:00', diff: 'Mon..Fri 21:00', full: 'Sat 20:00' },
  repository: '/srv/restic',
  passwordFile: '/etc/unifi-backup/restic.password',
  initialize: false,
  retention: defaultRetention,
  notify: { config: '/etc/unifi-backup/notify.yaml', aliases: ['smtp'] },
  upkeep: { checkSubset: '10%' },
  program: 'unifi-backup',
  programOptions: [],
  lockDir: '/run/unifi-backup',
  logDir: '/var/log/unifi-backup',
  stateDir: '/var/lib/unifi-backup',
};

export const myVm = 'MY-VM-NAME';
