import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { programRunner } from '../../src/host/runner.js';
import { Virsh } from '../../src/host/virsh.js';
import { VirshShell } from '../../src/host/virshshell.js';
import { runCliOk } from '../cli-run.js';
import { expectBatchedReadAgrees, outcome } from './batched-read.js';
import { shutdownAndCheck } from '../ops/chain-json.js';
import type { TestDomain } from '../rig/domain.js';
import { waitForSeq } from '../rig/domain.js';
import { libvirtUri } from '../rig/rig-paths.js';
import { useTestDomains } from '../rig/test-domains.js';

const domains = useTestDomains();
const suffix = randomBytes(3).toString('hex');
/** Names virsh's command language would misread unquoted; each domain gets a plain folder name. */
const hostileNames = [
  `ubt-sh it's ${suffix}`,
  `ubt-sh;semi#hash ${suffix}`,
  `ubt-sh\\back "dq" ${suffix}`,
  `ubt-sh ünïcødé 名前 ${suffix}`,
  `--ubt-sh-${suffix}`,
];

let running: TestDomain;
const shutOff: TestDomain[] = [];

beforeAll(async () => {
  running = await domains.create({ name: `ubt-sh run'ning; #${suffix}`, dirName: `ubt-sh-run-${suffix}` });
  for (const [i, name] of hostileNames.entries())
    shutOff.push(
      await domains.create({ name, dirName: `ubt-sh-${i}-${suffix}`, start: false, writer: false }),
    );
});

describe('virsh shell against the real libvirtd', () => {
  it("answers every read-only question as separate virsh runs do, hostile names included, as does libvirt's own connection", async () => {
    const plain = new Virsh(programRunner, libvirtUri);
    const shelled = new Virsh(
      programRunner,
      libvirtUri,
      undefined,
      new VirshShell(['virsh', '--quiet', '--connect', libvirtUri]),
    );
    const names = [running.name, ...shutOff.map((d) => d.name)];
    const missing = [`ubt-sh missing ' ;# ${suffix}`, `ubt-sh line\nbreak ${suffix}`];
    const questions = (v: Virsh) => [
      ...[...names, ...missing].flatMap((name) => [
        () => v.info(name),
        () => v.dumpXml(name, 'live'),
        () => v.dumpXml(name, 'inactive'),
        () => v.snapshotNames(name),
        // As its callers use it: undefined (virsh cannot batch this name) means one read at a time.
        async () =>
          (await v.readPlain(name, ['live', 'inactive'])) ?? {
            info: await v.info(name),
            xml: new Map([
              ['live', await v.dumpXml(name)],
              ['inactive', await v.dumpXml(name, 'inactive')],
            ]),
          },
        () => v.blockJobInfo(name, 'vda'),
      ]),
      // Only this file's domains: others' come and go meanwhile on a shared libvirtd.
      async () => (await v.listDomains()).filter((name) => names.includes(name)),
      async () => (await v.readAll({ blockJobs: true })).filter((d) => names.includes(d.name)),
    ];
    const expected: unknown[] = [];
    for (const question of questions(plain)) expected.push(await outcome(question));
    const actual: unknown[] = [];
    for (const question of questions(shelled)) actual.push(await outcome(question));
    expect(actual).toEqual(expected);
    // libvirt's own connection answers the same, and asks virsh only where libvirt said no.
    const lines: string[] = [];
    const connected = new Virsh(programRunner, libvirtUri, undefined, undefined, {
      path: '/run/libvirt/libvirt-sock',
      log: (line) => lines.push(line),
    });
    const viaConnection: unknown[] = [];
    for (const question of questions(connected)) viaConnection.push(await outcome(question));
    expect(viaConnection).toEqual(expected);
    expect(lines).toContainEqual(expect.stringMatching(/^\+ libvirt> virConnectListAllDomains --all /));
    expect(lines).toContainEqual(
      expect.stringMatching(/^\+ libvirt> virDomainGetXMLDesc\(inactive\) --domain ubt-sh it's /),
    );
    await expectBatchedReadAgrees(names);
    // Both kinds of answer were compared: definitions and errors.
    expect(
      expected.filter((e) => typeof e === 'object' && e !== null && 'error' in e).length,
    ).toBeGreaterThan(0);
  });

  it('backup incr and diff of a running domain with a hostile name, block jobs watched through the shell', async () => {
    // The same daemon by another URI: the tool has no connection of its own for it, virsh's shell
    // answers (as for any remote or session URI).
    const connect = ['--connect', 'qemu+unix:///system?socket=/run/libvirt/libvirt-sock'];
    await runCliOk([...connect, 'backup', 'incr', running.name]);
    await runCliOk(['backup', 'incr', running.name]);
    await waitForSeq(running, 'vda', 3);
    const diff = await runCliOk(['--debug', ...connect, 'backup', 'diff', running.name]);
    expect(diff.stderr).not.toMatch(/^\+ libvirt>/m);
    // The block pull's progress was asked through the shell, not by a virsh run each time.
    expect(diff.stderr).toMatch(/\+ virsh> blockjob --domain '[^\n]*' --path vda --info --raw/);
    // Every read-only question was answered by the shell: none ran virsh on its own.
    expect(diff.stderr).not.toMatch(
      /^\+ virsh --quiet --connect \S+ (dominfo|dumpxml|list|'echo|blockjob \S+ \S+ --path vda --info)/m,
    );
    await shutdownAndCheck(running, 3);
  });
});
