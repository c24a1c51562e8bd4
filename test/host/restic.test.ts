import { describe, expect, it } from 'vitest';
import type { ProgramRequest, Runner } from '../../src/host/runner.js';
import {
  parseBackupOutput,
  parseForgetOutput,
  redactRestic,
  Restic,
  ResticError,
  retentionArgs,
} from '../../src/host/restic.js';

const backupOutput = [
  '{"message_type":"status","percent_done":0.5,"total_files":3}',
  '{"message_type":"verbose_status","action":"unchanged","item":"/vm/disk.qcow2","data_size":0}',
  '{"message_type":"verbose_status","action":"new","item":"/vm/disk.incr-20240101-000000","data_size":5000}',
  '{"message_type":"verbose_status","action":"modified","item":"/vm/vm.xml","data_size":300}',
  '{"message_type":"verbose_status","action":"modified","item":"/vm/","data_size":0,"metadata_size":99}',
  '{"message_type":"summary","files_new":1,"files_changed":1,"files_unmodified":1,"data_added":4200,' +
    '"total_files_processed":3,"total_bytes_processed":1000300,"snapshot_id":"abcd1234"}',
].join('\n');

function fakeRunner(replies: Record<string, { exitCode: number; stdout?: string; stderr?: string }>) {
  const calls: ProgramRequest[] = [];
  const runner: Runner = (request) => {
    calls.push(request);
    const verb =
      request.argv.find((a, i) => i > 0 && !a.startsWith('-') && request.argv[i - 1] !== '-o') ?? '';
    const reply = replies[verb] ?? { exitCode: 0 };
    return Promise.resolve({ argv: request.argv, stdout: '', stderr: '', ...reply });
  };
  return { runner, calls };
}

const settings = {
  repository: 'rest:https://user:s3cret-pass@backup.example:8000/vm',
  passwordFile: '/etc/unifi-backup/restic-password',
  host: 'kvm1',
  options: ['sftp.command=ssh -p 2222 nas -s sftp'],
  env: { AWS_SECRET_ACCESS_KEY: 'aws-secret-value' },
};

describe('restic wrapper', () => {
  it('sums the bytes read from new and changed files only', () => {
    expect(parseBackupOutput(backupOutput)).toEqual({
      snapshotId: 'abcd1234',
      filesNew: 1,
      filesChanged: 1,
      filesUnmodified: 1,
      bytesProcessed: 1000300,
      bytesRead: 5300,
      bytesAdded: 4200,
    });
    expect(parseBackupOutput('{"message_type":"status"}')).toBeUndefined();
  });

  it('counts what forget kept and removed', () => {
    const out = JSON.stringify([
      { keep: [{}, {}], remove: [{ short_id: 'aaaa1111' }] },
      { keep: [{}], remove: null },
    ]);
    expect(parseForgetOutput(out)).toEqual({ kept: 3, removed: ['aaaa1111'] });
  });

  it('turns keep rules into flags', () => {
    expect(retentionArgs({ keepLast: 3, keepWithin: '7d' })).toEqual([
      '--keep-last',
      '3',
      '--keep-within',
      '7d',
    ]);
  });

  it('blanks URL passwords and known secrets', () => {
    expect(redactRestic('at rest:https://u:pw@h/x and sftp://a@b', [])).toBe(
      'at rest:https://u:***@h/x and sftp://a@b',
    );
    expect(redactRestic('key aws-secret-value leaked', ['aws-secret-value'])).toBe('key *** leaked');
  });

  it('passes the repository and password in the environment, never in argv', async () => {
    const { runner, calls } = fakeRunner({ backup: { exitCode: 0, stdout: backupOutput } });
    const restic = new Restic(runner, settings, {});
    await restic.backup(['/vm/a b', '/vm/c'], { tags: ['vm 1', 'kvm', 'incr'], parent: 'ffff' });
    const call = calls[0];
    expect(call?.argv.join(' ')).not.toContain('s3cret');
    expect(call?.argv).toEqual(
      expect.arrayContaining(['--files-from-verbatim', '--tag', 'vm 1', '--parent', 'ffff']),
    );
    expect(call?.argv.slice(0, 3)).toEqual(['restic', '-o', 'sftp.command=ssh -p 2222 nas -s sftp']);
    expect(call?.env).toMatchObject({
      RESTIC_REPOSITORY: settings.repository,
      RESTIC_PASSWORD_FILE: settings.passwordFile,
      AWS_SECRET_ACCESS_KEY: 'aws-secret-value',
    });
  });

  it('reads a device through --stdin: its path is the input, never an argument', async () => {
    const { runner, calls } = fakeRunner({ backup: { exitCode: 0, stdout: backupOutput } });
    const restic = new Restic(runner, settings, {});
    const summary = await restic.backupDevice('/dev/vg0/web data', 'web.vda.raw', ['kvm-device', 'web/vda']);
    expect(summary.snapshotId).toBe('abcd1234');
    expect(calls[0]?.inputFile).toBe('/dev/vg0/web data');
    expect(calls[0]?.argv).not.toContain('/dev/vg0/web data');
    expect(calls[0]?.argv).toEqual(
      expect.arrayContaining([
        '--stdin',
        '--stdin-filename',
        'web.vda.raw',
        '--tag',
        'web/vda',
        '--host',
        'kvm1',
      ]),
    );
  });

  it('writes a dump onto a device as its output, streamed, never through its arguments', async () => {
    const { runner, calls } = fakeRunner({ dump: { exitCode: 0 } });
    const restic = new Restic(runner, settings, {});
    await restic.dump('abcd1234', '/web.vda.raw', '/dev/vg0/web new');
    expect(calls[0]?.outputFile).toBe('/dev/vg0/web new');
    expect(calls[0]?.argv.slice(-3)).toEqual(['dump', 'abcd1234', '/web.vda.raw']);
  });

  it('reports failures redacted, with what to do next', async () => {
    const { runner } = fakeRunner({
      snapshots: {
        exitCode: 1,
        stderr: `Fatal: wrong password or no key found\nrepo ${settings.repository} aws-secret-value`,
      },
      cat: {
        exitCode: 1,
        stderr:
          'Fatal: unable to open config file: stat /srv/r/config: no such file or directory\nIs there a repository at the following location?\n/srv/r',
      },
    });
    const restic = new Restic(runner, settings, {});
    const error = await restic.snapshots().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ResticError);
    const message = (error as ResticError).message;
    expect((error as ResticError).failure).toBe('wrong-password');
    expect(message).not.toContain('s3cret-pass');
    expect(message).not.toContain('aws-secret-value');
    expect(message).toContain('Check the password');
    expect(await restic.exists()).toBe(false);
    expect(restic.repositoryText).toBe('rest:https://user:***@backup.example:8000/vm');
  });

  it('restores exactly the named paths, and nothing at all when none are named', async () => {
    const { runner, calls } = fakeRunner({});
    const restic = new Restic(runner, settings, {});
    await restic.restoreFiles('abc', '/stage', []);
    expect(calls).toEqual([]);
    await restic.restoreFiles('abc', '/stage', ['/vm/a*.qcow2', '/vm/b.xml']);
    expect(calls[0]?.argv.slice(-7)).toEqual([
      'abc',
      '--target',
      '/stage',
      '--include',
      '/vm/a\\*.qcow2',
      '--include',
      '/vm/b.xml',
    ]);
  });
});
