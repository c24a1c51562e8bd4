import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { programRunner } from '../../src/host/runner.js';
import { snapshotXml } from '../../src/host/domainxml.js';
import { Virsh } from '../../src/host/virsh.js';
import { isolatedEnv, runCli, runCliOk } from '../cli-run.js';
import { chainOf, shapeOf, shutdownAndCheck } from '../ops/chain-json.js';
import type { TestDomain } from '../rig/domain.js';
import { waitForSeq } from '../rig/domain.js';
import { libvirtUri } from '../rig/rig-paths.js';
import { useTestDomains } from '../rig/test-domains.js';
import { outcome } from './batched-read.js';
import { liveSources, snapshotRuns, virshWrapper } from '../rig/virsh.js';

const domains = useTestDomains();
const socket = '/run/libvirt/libvirt-sock';
let running: TestDomain;

beforeAll(async () => {
  running = await domains.create({ disks: 2 });
});

describe("changes on libvirt's own connection", () => {
  it('fail as a virsh run fails: the same error, the same message', async () => {
    expect(existsSync(socket)).toBe(true);
    const options = { quiesce: false, memory: false };
    const attempts = (virsh: Virsh) => [
      // libvirt refuses the document: it names a disk the domain does not have.
      () => {
        virsh.prepareSnapshot(running.name, options);
        return virsh.snapshotCreate(
          running.name,
          `<domainsnapshot><disks><disk name='vdz' snapshot='external'><source file='${path.join(
            running.dir,
            'vdz.never.qcow2',
          )}'/></disk></disks></domainsnapshot>`,
          options,
        );
      },
      // No such domain: the lookup fails ahead, and the snapshot runs virsh.
      () => {
        virsh.prepareSnapshot(`${running.name}-missing`, options);
        return virsh.snapshotCreate(`${running.name}-missing`, '<domainsnapshot/>', options);
      },
      // A pull onto a file that is not in the chain, a commit onto one, a pivot without a job.
      () =>
        virsh.blockPull(running.name, 'vda', path.join(running.dir, 'not-in-chain.qcow2'), () => undefined),
      () =>
        virsh.blockCommit(running.name, 'vdb', path.join(running.dir, 'not-in-chain.qcow2'), () => undefined),
      () => virsh.blockJobPivot(running.name, 'vda'),
    ];
    const expected: unknown[] = [];
    for (const attempt of attempts(new Virsh(programRunner, libvirtUri)))
      expected.push(await outcome(attempt));
    const lines: string[] = [];
    const rpc = new Virsh(programRunner, libvirtUri, undefined, undefined, {
      path: socket,
      log: (line) => lines.push(line),
    });
    const actual: unknown[] = [];
    for (const attempt of attempts(rpc)) actual.push(await outcome(attempt));
    expect(actual).toEqual(expected);
    expect(expected).toEqual([
      expect.objectContaining({ error: 'ProcessError' }),
      expect.objectContaining({ error: 'NoSuchDomainError' }),
      expect.objectContaining({ error: 'ProcessError' }),
      expect.objectContaining({ error: 'ProcessError' }),
      expect.objectContaining({ error: 'ProcessError' }),
    ]);
    // All but the missing domain's went through the connection; that one ran virsh.
    expect(lines).toEqual([
      expect.stringMatching(/^\+ libvirt> virDomainSnapshotCreateXML --domain /),
      expect.stringMatching(/^\+ libvirt> virDomainBlockRebase --domain /),
      expect.stringMatching(/^\+ libvirt> virDomainBlockCommit --domain /),
      expect.stringMatching(/^\+ libvirt> virDomainBlockJobAbort --domain \S+ --path vda --pivot$/),
    ]);
    expect(shapeOf(await chainOf(running.name))).toEqual({ vda: ['base'], vdb: ['base'] });
  });

  it('freeze the disks as a prepared virsh run does (every other URI); backup incr, diff and full make their changes on it', async () => {
    const options = { quiesce: false, memory: false };
    const layers = (stamp: string) =>
      running.disks.map((d) => ({
        target: d.target,
        file: path.join(running.dir, `${d.target}.incr-${stamp}`),
      }));
    const viaLibvirt = new Virsh(programRunner, libvirtUri, undefined, undefined, { path: socket });
    viaLibvirt.prepareSnapshot(running.name, options);
    await viaLibvirt.snapshotCreate(running.name, snapshotXml('t1', layers('20261207-000001')), options);
    const viaVirsh = new Virsh(programRunner, libvirtUri);
    viaVirsh.prepareSnapshot(running.name, options);
    await viaVirsh.snapshotCreate(running.name, snapshotXml('t2', layers('20261207-000002')), options);
    expect(await liveSources(running.name)).toEqual(layers('20261207-000002').map((l) => l.file));
    expect(await snapshotRuns(running.name)).toEqual([]);

    const virshRuns = loggingVirsh();
    const env = { ...isolatedEnv(), PATH: virshRuns.path };
    const incr = await runCliOk(['--debug', 'backup', 'incr', running.name], env);
    expect(incr.stderr).toMatch(
      /^\+ libvirt> virDomainSnapshotCreateXML --domain \S+ --no-metadata --atomic --disk-only$/m,
    );
    // Every question and change of an incr is a call on the connection: virsh never runs.
    expect(incr.stderr).toMatch(/^\+ libvirt> virConnectListAllDomains --all /m);
    expect(virshRuns.taken()).toEqual([]);
    await runCliOk(['backup', 'incr', '--quiesce', running.name]);
    expect(shapeOf(await chainOf(running.name))).toEqual({
      vda: ['incr', 'incr', 'incr', 'incr', 'base'],
      vdb: ['incr', 'incr', 'incr', 'incr', 'base'],
    });
    await waitForSeq(running, 'vda', 3);

    // A diff pulls, a full commits and pivots, each started on the connection.
    const diff = await runCliOk(['--debug', 'backup', 'diff', running.name], env);
    expect(diff.stderr).toMatch(/^\+ libvirt> virDomainBlockRebase --domain \S+ --path vda --base \S+$/m);
    expect(diff.stderr).toMatch(/^\+ libvirt> virDomainGetBlockJobInfo --domain \S+ --path vda$/m);
    // Only other domains' snapshot metadata (other tests' domains) is read through virsh.
    expect(
      virshRuns.taken().filter((line) => !/^--quiet --connect \S+( snapshot-(list|dumpxml)|$)/.test(line)),
    ).toEqual([]);
    expect(shapeOf(await chainOf(running.name))).toEqual({
      vda: ['incr', 'diff', 'base'],
      vdb: ['incr', 'diff', 'base'],
    });
    await waitForSeq(running, 'vda', 5);
    const full = await runCliOk(['--debug', 'backup', 'full', running.name], env);
    expect(full.stderr).toMatch(
      /^\+ libvirt> virDomainBlockCommit --domain \S+ --path vdb --base \S+ --active$/m,
    );
    expect(full.stderr).toMatch(/^\+ libvirt> virDomainBlockJobAbort --domain \S+ --path vdb --pivot$/m);
    expect(
      virshRuns.taken().filter((line) => !/^--quiet --connect \S+( snapshot-(list|dumpxml)|$)/.test(line)),
    ).toEqual([]);
    expect(shapeOf(await chainOf(running.name))).toEqual({ vda: ['incr', 'base'], vdb: ['incr', 'base'] });
    await waitForSeq(running, 'vda', 7);

    // A block job someone else started (a pull of the whole chain at 1 MiB/s): the connection
    // reads it as virsh does, and a backup refuses to start beside it.
    await execa('virsh', [
      '--connect',
      libvirtUri,
      'blockpull',
      '--domain',
      running.name,
      '--path',
      'vdb',
      '--bandwidth',
      '1',
    ]);
    const viaVirshJob = await new Virsh(programRunner, libvirtUri).blockJobInfo(running.name, 'vdb');
    const viaLibvirtJob = await viaLibvirt.blockJobInfo(running.name, 'vdb');
    expect(viaLibvirtJob).toEqual({ ...viaVirshJob, cur: expect.any(Number) as number });
    expect(viaLibvirtJob).toMatchObject({ type: 'Block Pull', ready: false });
    const refused = await runCli(['backup', 'diff', running.name]);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toMatch(
      /disk vdb of domain '\S+' already runs a block job \(Block Pull: \[ *\d+ %\]\)\. Nothing was changed\./,
    );
    await execa('virsh', [
      '--connect',
      libvirtUri,
      'blockjob',
      '--domain',
      running.name,
      '--path',
      'vdb',
      '--abort',
    ]);
    expect(await viaLibvirt.blockJobInfo(running.name, 'vdb')).toBeUndefined();
    expect(shapeOf(await chainOf(running.name))).toEqual({ vda: ['incr', 'base'], vdb: ['incr', 'base'] });
    await shutdownAndCheck(running, 7);
  });
});

/** A folder put first on PATH whose virsh logs its arguments (one line per run), then runs virsh. */
function loggingVirsh(): { path: string; taken: () => string[] } {
  const log = path.join(mkdtempSync(path.join(os.tmpdir(), 'ub-virsh-log-')), 'runs.log');
  writeFileSync(log, '');
  const dir = virshWrapper((real) => `echo "$*" >> '${log}'\nexec '${real}' "$@"`);
  return {
    path: `${dir}:${process.env.PATH ?? ''}`,
    taken: () => {
      const lines = readFileSync(log, 'utf8')
        .split('\n')
        .filter((line) => line !== '');
      writeFileSync(log, '');
      return lines;
    },
  };
}
