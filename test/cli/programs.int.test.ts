import { waitForSeq } from '../rig/domain.js';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultNotifyFile } from '../../src/config/location.js';
import { parseBlockJobInfo } from '../../src/host/virsh.js';
import { cliPath, isolatedEnv, runCli, runCliOk } from '../cli-run.js';
import type { CliResult } from '../cli-run.js';
import { startRecordingServer } from '../notify/recording-server.js';
import type { RecordingServer } from '../notify/recording-server.js';
import { agentCommand } from '../rig/agent.js';
import type { TestDomain } from '../rig/domain.js';
import { useTestDomains } from '../rig/test-domains.js';
import { domainState, virsh } from '../rig/virsh.js';
import { chainOf, expectDataIntact, layerPaths, shapeOf } from '../ops/chain-json.js';

/**
 * Programs the tool runs that are missing, killed, hung or stalled: each ends in a bounded time
 * with a message naming the program (and its Debian package) or the domain, never an internal
 * error, and the VM keeps running. One booted guest serves every case that needs one.
 */
const domains = useTestDomains();
const env = isolatedEnv();
/**
 * The host's libvirtd by a URI the tool has no connection of its own for: virsh asks and changes
 * everything, as on a remote or session URI (on qemu:///system a backup may run no virsh at all).
 */
const viaVirsh = { LIBVIRT_DEFAULT_URI: 'qemu+unix:///system?socket=/run/libvirt/libvirt-sock' };
const scratch = mkdtempSync(path.join(os.tmpdir(), 'ub-programs-'));
let domain: TestDomain;

beforeAll(async () => {
  domain = await domains.create({ disks: 1, diskSizeMiB: 512 });
});

/** A PATH folder of links to every program of the usual folders, except the named ones. */
function pathWithout(...missing: string[]): string {
  const dir = mkdtempSync(path.join(scratch, 'bin-'));
  for (const folder of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'])
    for (const name of readdirSync(folder, { withFileTypes: true }).map((entry) => entry.name)) {
      if (missing.includes(name)) continue;
      try {
        symlinkSync(path.join(folder, name), path.join(dir, name));
      } catch {
        // The same name in an earlier folder wins, as it would on PATH.
      }
    }
  return dir;
}

/** A PATH whose `program` is the given shell script, ahead of the real PATH. */
function pathWithStub(program: string, script: string): string {
  const dir = mkdtempSync(path.join(scratch, 'stub-'));
  writeFileSync(path.join(dir, program), `#!/bin/sh\n${script}\n`);
  chmodSync(path.join(dir, program), 0o755);
  return `${dir}:${process.env.PATH ?? ''}`;
}

function configFile(text: string): string {
  const file = path.join(mkdtempSync(path.join(scratch, 'config-')), 'config.yaml');
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

function expectClearFailure(result: CliResult, message: RegExp): void {
  expect(result.exitCode, result.stderr).toBe(1);
  expect(result.stderr).toMatch(message);
  expect(result.stderr).not.toMatch(/internal error|\n\s+at /);
}

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const started = Date.now();
  const value = await run();
  return { value, seconds: (Date.now() - started) / 1000 };
}

describe('a program that is missing or killed', () => {
  it('names a missing qemu-img, virsh or flock and the Debian package, and changes nothing', async () => {
    const before = layerPaths(await chainOf(domain.name, env));
    const cases = [
      { program: 'qemu-img', pkg: 'qemu-utils' },
      { program: 'virsh', pkg: 'libvirt-clients' },
      { program: 'flock', pkg: 'util-linux' },
    ];
    for (const { program, pkg } of cases) {
      const result = await runCli(['backup', 'incr', domain.name], {
        ...env,
        ...viaVirsh,
        PATH: pathWithout(program),
      });
      expectClearFailure(
        result,
        new RegExp(`${program} is not installed or not on PATH.*apt-get install ${pkg}`),
      );
    }
    expect(layerPaths(await chainOf(domain.name, env))).toEqual(before);
    expect(await domainState(domain.name)).toBe('running');
  });

  it('says which program a signal killed', async () => {
    const result = await runCli(['status', domain.name], {
      ...env,
      ...viaVirsh,
      PATH: pathWithStub('virsh', 'kill -KILL $$'),
    });
    expectClearFailure(result, /virsh was killed by signal SIGKILL while running: virsh .*--connect/);
  });

  it('stops a hung virsh after the configured timeout', async () => {
    const { value: result, seconds } = await timed(() =>
      runCli(['status', domain.name], {
        ...env,
        ...viaVirsh,
        PATH: pathWithStub('virsh', 'exec sleep 300'),
        UNIFI_BACKUP_CONFIG: configFile('timeouts:\n  virsh: 2\n'),
      }),
    );
    expectClearFailure(result, /virsh did not answer within 2 s and was stopped.*raise timeouts\.virsh/);
    expect(seconds).toBeLessThan(30);
  });
});

describe('notify files', () => {
  let server: RecordingServer;
  beforeAll(async () => {
    server = await startRecordingServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it('never reads notify.yaml from the current folder', async () => {
    const folder = mkdtempSync(path.join(scratch, 'cwd-'));
    writeFileSync(
      path.join(folder, 'notify.yaml'),
      `aliases:\n  here:\n    url: "generic://${server.host}/planted?disabletls=yes"\n`,
    );
    const result = await execa('node', [cliPath, 'notify', 'send', '--alias', 'here', '--msg', 'hello'], {
      cwd: folder,
      env: { ...env, PATH: process.env.PATH ?? '', NO_COLOR: '1' },
      extendEnv: false,
      reject: false,
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`${defaultNotifyFile}: no such file`);
    expect(server.requests).toEqual([]);
    // Named explicitly, the same file is read and sent to.
    await execa(
      'node',
      [cliPath, 'notify', 'send', '--config', 'notify.yaml', '--alias', 'here', '--msg', 'hi'],
      {
        cwd: folder,
        env: { ...env, PATH: process.env.PATH ?? '', NO_COLOR: '1' },
        extendEnv: false,
      },
    );
    expect(server.requests.map((r) => r.path)).toEqual(['/planted']);
  });

  it('refuses a variable outside the allow-list unless config.yaml lists it', async () => {
    const file = path.join(mkdtempSync(path.join(scratch, 'notify-')), 'notify.yaml');
    writeFileSync(
      file,
      `aliases:\n  leak:\n    url: "generic://${server.host}/\${SECRET_TOKEN}?disabletls=yes"\n`,
    );
    const args = ['notify', 'send', '--config', file, '--alias', 'leak', '--msg', 'hi'];
    const secret = { ...env, SECRET_TOKEN: 'tok-123' };
    server.requests.length = 0;
    const refused = await runCli(args, secret);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain(`${file}: 1 problem:`);
    expect(refused.stderr).toContain('environment variable SECRET_TOKEN is not allowed here');
    expect(server.requests).toEqual([]);
    const allowed = configFile('notify:\n  environment: [SECRET_TOKEN]\n');
    await runCliOk(args, { ...secret, UNIFI_BACKUP_CONFIG: allowed });
    expect(server.requests.map((r) => r.path)).toEqual(['/tok-123']);
  });
});

describe('a guest agent that never answers, a block job that never progresses', () => {
  it('fails backup incr --quiesce in bounded time, the VM running and thawed, nothing changed', async () => {
    await waitForSeq(domain, 'vda', 2);
    const before = layerPaths(await chainOf(domain.name, env));
    // The agent stops itself for 20 s (a child it started resumes it): it cannot answer meanwhile.
    await agentCommand(domain.name, 'guest-exec', {
      path: '/bin/sh',
      arg: ['-c', 'pid=$(cat /run/qemu-ga.pid); kill -STOP $pid; sleep 20; kill -CONT $pid'],
    });
    const { value: result, seconds } = await timed(() =>
      runCli(['backup', 'incr', '-q', domain.name], {
        ...env,
        UNIFI_BACKUP_CONFIG: configFile('timeouts:\n  guest-agent: 2\n'),
      }),
    );
    expectClearFailure(result, new RegExp(`domain '${domain.name}': the guest agent does not answer`));
    expect(seconds).toBeLessThan(20);
    expect(await domainState(domain.name)).toBe('running');
    await domain.waitForAgent(60_000);
    expect(await agentCommand(domain.name, 'guest-fsfreeze-status')).toBe('thawed');
    expect(layerPaths(await chainOf(domain.name, env))).toEqual(before);
    const seq = await domain.lastSeq('vda');
    expect(await waitForSeq(domain, 'vda', seq + 2)).toBeGreaterThan(seq);
  });

  it('aborts a stalled block commit after block-job-stall; the next backup works and the data survive', async () => {
    await runCliOk(['backup', 'incr', domain.name], env);
    // Enough data above the base that the commit lasts long enough to be seen and stalled.
    await domain.guestExec(['dd', 'if=/dev/zero', 'of=/mnt/vda/fill', 'bs=1M', 'count=320']);
    await domain.guestExec(['sync']);
    await runCliOk(['backup', 'incr', domain.name], env);
    const before = await chainOf(domain.name, env);
    expect(shapeOf(before)).toEqual({ vda: ['incr', 'incr', 'base'] });
    const status = `/run/libvirt/qemu/${domain.name}.xml`;
    const run = execa('node', [cliPath, 'backup', 'full', domain.name], {
      env: {
        ...env,
        UNIFI_BACKUP_CONFIG: configFile('timeouts:\n  block-job-stall: 3\n'),
        // Started at 1 MiB/s (test-only): unthrottled, QEMU could merge the 320 MB before the
        // virsh below slows the job down.
        UNIFI_BACKUP_FAULT_JOB_MIB_S: '1',
        NO_COLOR: '1',
      },
      reject: false,
    });
    let seen = false;
    for (const end = Date.now() + 120_000; !seen && run.exitCode === null && Date.now() < end;) {
      seen = /active-commit/.test(readFileSync(status, 'utf8'));
      if (!seen) await new Promise((r) => setTimeout(r, 2));
    }
    expect(seen, 'the block commit was never seen running').toBe(true);
    // One byte a second: QEMU's job makes no more progress.
    await virsh('blockjob', '--domain', domain.name, '--path', 'vda', '--bandwidth', '1', '--bytes');
    const started = Date.now();
    const result = await run;
    expect((Date.now() - started) / 1000).toBeLessThan(60);
    expectClearFailure(
      { exitCode: result.exitCode ?? 1, stdout: result.stdout, stderr: result.stderr },
      new RegExp(
        `of disk vda of domain '${domain.name}' made no progress for 3 s.*aborted.*` +
          `unifi-backup repair '${domain.name}'`,
        's',
      ),
    );
    expect(await domainState(domain.name)).toBe('running');
    const job = await execa('virsh', [
      'blockjob',
      '--domain',
      domain.name,
      '--path',
      'vda',
      '--info',
      '--raw',
    ]);
    expect(parseBlockJobInfo(job.stdout)).toBeUndefined();
    // The disk still runs from its top, every layer is still there.
    expect(layerPaths(await chainOf(domain.name, env))).toEqual(layerPaths(before));
    const seq = await domain.lastSeq('vda');
    await waitForSeq(domain, 'vda', seq + 2);

    await runCliOk(['backup', 'incr', domain.name], env);
    const after = await chainOf(domain.name, env);
    expect(after.disks[0]?.layers.at(-1)?.path).toBe(domain.disks[0]?.path);
    // The layer just frozen is what the guest saw: its data, read through the chain, is sound.
    await expectDataIntact(after.disks[0]?.layers[1]?.path ?? '', seq);
    expect(await domainState(domain.name)).toBe('running');
  });
});
