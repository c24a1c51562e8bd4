import { Command, Option } from 'commander';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { applyConfigDefaults } from '../../src/cli/settings.js';
import { configWarnings, validateConfig } from '../../src/config/config.js';
import { configExample } from '../../src/config/example.js';

describe('config example', () => {
  it('passes validation as printed, with no warnings', () => {
    const config = validateConfig('example', parse(configExample));
    expect(config).toMatchObject({
      connect: 'qemu:///system',
      'max-incr': 6,
      restic: { repository: '/srv/restic/kvm' },
      notify: { 'on-failure': ['admins'] },
    });
    expect(configWarnings(config)).toEqual([]);
  });

  it('documents every top-level key the schema knows', () => {
    for (const key of ['connect', 'lock-dir', 'state-dir', 'max-incr', 'restic', 'retention', 'notify'])
      expect(configExample).toMatch(new RegExp(`^${key}:`, 'm'));
  });

  it('warns about sections it does not know, and checks the notify section', () => {
    expect(configWarnings(validateConfig('c', { maintenance: {} }))[0]).toMatch(
      /^maintenance: unknown section/,
    );
    expect(() => validateConfig('c', { notify: { 'on-failure': 'admins', bogus: 1 } })).toThrow(
      /notify.on-failure: .*\n.*notify: Unrecognized key: "bogus"/s,
    );
  });
});

function program(): { root: Command; incr: Command } {
  const incr = new Command('incr').addOption(new Option('--max-incr <n>').argParser(Number));
  const root = new Command('unifi-backup')
    .addOption(new Option('-c, --connect <uri>').default('qemu:///system'))
    .addOption(new Option('--lock-dir <dir>').default('/run/unifi-backup'))
    .addOption(new Option('--state-dir <dir>').default('/var/lib/unifi-backup'))
    .addCommand(new Command('backup').addCommand(incr));
  for (const c of [root, incr]) c.action(() => undefined);
  return { root, incr };
}

describe('settings from config.yaml', () => {
  const config = {
    connect: 'qemu+ssh://kvm1/system',
    'lock-dir': '/cfg/lock',
    'state-dir': '/cfg/state',
    'max-incr': 4,
  };

  it('fill in what the command line left at its built-in default', () => {
    const { root, incr } = program();
    root.parse(['--lock-dir', '/flag/lock', 'backup', 'incr'], { from: 'user' });
    applyConfigDefaults(incr, config, {});
    expect(incr.optsWithGlobals()).toMatchObject({
      connect: 'qemu+ssh://kvm1/system',
      lockDir: '/flag/lock',
      stateDir: '/cfg/state',
      maxIncr: 4,
    });
  });

  it('lose to flags and to the environment', () => {
    const { root, incr } = program();
    root.parse(['backup', 'incr', '--max-incr', '9'], { from: 'user' });
    applyConfigDefaults(incr, config, { UNIFI_BACKUP_STATE_DIR: '/env/state' });
    expect(incr.optsWithGlobals()).toMatchObject({ stateDir: '/var/lib/unifi-backup', maxIncr: 9 });
  });
});
