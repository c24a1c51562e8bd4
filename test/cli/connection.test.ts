import { describe, expect, it } from 'vitest';
import { defaultConnection, earlyConnection } from '../../src/cli/connection.js';

describe('earlyConnection: the URI a verb will connect to, before the parser loads', () => {
  const env = {};
  it('a verb that talks to libvirt first: the default URI, LIBVIRT_DEFAULT_URI or --connect in any form', () => {
    expect(earlyConnection(['backup', 'incr', 'vm'], env)).toBe('qemu:///system');
    expect(earlyConnection(['status', 'all'], { LIBVIRT_DEFAULT_URI: 'qemu:///session' })).toBe(
      'qemu:///session',
    );
    expect(earlyConnection(['-c', 'qemu+ssh://h/system', 'files', 'vm'], env)).toBe('qemu+ssh://h/system');
    expect(earlyConnection(['--connect=test:///default', 'chain', 'vm'], env)).toBe('test:///default');
    expect(earlyConnection(['backup', 'incr', 'vm', '-cqemu:///session'], env)).toBe('qemu:///session');
    expect(earlyConnection(['--lock-dir', 'status', '--jobs', '2', 'backup', 'incr', 'all'], env)).toBe(
      'qemu:///system',
    );
    expect(earlyConnection(['-a', 'backup', '-m', 'incr', '-q', 'vm'], env)).toBe('qemu:///system');
  });

  it('none for help, version, a verb that does not start with libvirt, or no verb', () => {
    for (const argv of [
      ['backup', 'incr', '--help'],
      ['help', 'backup'],
      ['--version'],
      ['-a', 'backup', '-m', 'incr', '-h'],
      ['notify', 'send'],
      ['restore', 'vm'],
      ['--state-dir', 'backup'],
      ['--', 'backup'],
      [],
    ])
      expect(earlyConnection(argv, env), argv.join(' ')).toBeUndefined();
  });

  it('the default is the one --connect shows in help', () => {
    expect(defaultConnection({})).toBe('qemu:///system');
    expect(defaultConnection({ LIBVIRT_DEFAULT_URI: '' })).toBe('');
  });
});
