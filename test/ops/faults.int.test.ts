import { waitForSeq } from '../rig/domain.js';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../../src/chain/plan.js';
import { parseDomainXml } from '../../src/host/domainxml.js';
import { parseBlockJobInfo } from '../../src/host/virsh.js';
import { Journal, journalFile } from '../../src/journal/journal.js';
import { maintenanceStatus } from '../../src/ops/maintenance-record.js';
import { cliPath, isolatedEnv, runCli, runCliOk } from '../cli-run.js';
import type { TestDomain } from '../rig/domain.js';
import { checkImage } from '../rig/image.js';
import { testRoot } from '../rig/rig-paths.js';
import { useTestDomains } from '../rig/test-domains.js';
import { domainState, virsh, virshWrapper } from '../rig/virsh.js';
import { chainOf, expectDataIntact, layerPaths, shapeOf } from './chain-json.js';

const domains = useTestDomains();
const env = isolatedEnv();
const stateDir = env.UNIFI_BACKUP_STATE_DIR ?? '';
const verbs = ['incr', 'diff', 'full', 'disable'] as const;

const levelArgs = (verb: string, name: string) => [
  'backup',
  verb,
  ...(verb === 'disable' ? ['-y'] : []),
  name,
];

async function sources(name: string, inactive: boolean): Promise<(string | undefined)[]> {
  const args = ['dumpxml', ...(inactive ? ['--inactive'] : []), '--domain', name];
  return parseDomainXml((await virsh(...args)).stdout).disks.map((d) => d.source);
}

/**
 * Kills `backup VERB` after step K, repairs, and proves invariants 1, 2, 6 and 7: the domain runs if
 * it ran, every file of the chain exists and the chain reads, both definitions agree, nothing is left
 * pending, the next backup succeeds, and the guest's records survived.
 */
async function killRepairCheck(
  domain: TestDomain,
  verb: string,
  k: number,
  running: boolean,
): Promise<boolean> {
  const what = `${verb} killed after step ${k} (${running ? 'running' : 'shut off'})`;
  const killed = await runCli(levelArgs(verb, domain.name), {
    ...env,
    UNIFI_BACKUP_FAULT_KILL_AFTER_STEP: String(k),
  });
  // A plan of fewer than K steps runs to its end: every step has been killed.
  const completed = killed.exitCode === 0;
  const repaired = await runCliOk(['repair', domain.name], env);
  if (!completed) expect(repaired.stdout, what).toContain(`was interrupted after step ${k} of`);
  expect(await domainState(domain.name), what).toBe(running ? 'running' : 'shut off');
  const chain = await chainOf(domain.name, env);
  for (const file of layerPaths(chain)) expect(existsSync(file), `${what}: ${file}`).toBe(true);
  if (running) expect(await sources(domain.name, true), what).toEqual(await sources(domain.name, false));
  expect(existsSync(journalFile(stateDir, domain.name)), what).toBe(false);
  await runCliOk(['backup', 'incr', domain.name], env);
  const after = await chainOf(domain.name, env);
  const vda = after.disks.find((d) => d.target === 'vda');
  // A frozen layer is safe to read while the guest writes; shut off, the top is.
  await expectDataIntact((running ? vda?.layers[1]?.path : vda?.layers[0]?.path) ?? '', 1);
  return completed;
}

async function faultEveryStep(domain: TestDomain, verb: string, running: boolean): Promise<void> {
  for (let k = 1, completed = false; !completed; k += 1) {
    const started = Date.now();
    completed = await killRepairCheck(domain, verb, k, running);
    console.log(`${verb} K=${k} (${running ? 'running' : 'shut off'}): ${Date.now() - started} ms`);
    expect(k, `${verb} has no end`).toBeLessThan(20);
  }
}

describe('a run killed after any step, then repair', () => {
  let domain: TestDomain;
  beforeAll(async () => {
    domain = await domains.create({ disks: 1 });
    await waitForSeq(domain, 'vda', 2);
    await runCliOk(['backup', 'incr', domain.name], env);
  });

  for (const verb of verbs)
    it(`running: every step of ${verb}`, async () => {
      await faultEveryStep(domain, verb, true);
    });

  it('running: repair pivots a finished active commit the plan wanted, aborts one it did not, resumes a paused domain', async () => {
    await runCliOk(['backup', 'disable', '-y', domain.name], env);
    await runCliOk(['backup', 'incr', domain.name], env);
    const base = domain.disks[0]?.path ?? '';
    const top = (await sources(domain.name, false))[0] ?? '';
    const merge = { target: 'vda', top, base, baseFormat: 'qcow2' };
    const plan = (kind: 'block-commit' | 'block-pull'): Plan => ({
      domain: domain.name,
      verb: 'backup full',
      steps: [{ kind, merge }],
      tops: new Map([['vda', base]]),
      notes: [],
    });
    // Without --pivot, --wait returns once the active commit is ready, leaving the job for us.
    const readyCommit = async () => {
      await virsh(
        'blockcommit',
        '--domain',
        domain.name,
        '--path',
        'vda',
        '--active',
        '--base',
        base,
        '--wait',
      );
    };

    // Fails the case when the mirror does not catch up: the job's progress must come back to 100 %.
    const waitForMirror = async () => {
      for (let i = 0; i < 100; i++) {
        const job = parseBlockJobInfo(
          (await virsh('blockjob', '--domain', domain.name, '--path', 'vda', '--info', '--raw')).stdout,
        );
        if (job?.ready === true) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error('the ready block commit did not catch up with the paused guest in 10 s');
    };

    await readyCommit();
    // The guest's writers move a ready commit's progress off 100 % for a moment: paused, the
    // mirror catches up and stays there while status is read.
    await virsh('suspend', '--domain', domain.name);
    await waitForMirror();
    Journal.begin(stateDir, plan('block-pull'));
    const dry = await runCliOk(['--dry-run', 'repair', domain.name], env);
    expect(dry.stdout).toMatch(/would abort the block job left on disk vda/);
    expect((await runCliOk(['--json', 'status', domain.name], env)).stdout).toContain('(ready)');
    // Over all, the block jobs of running domains come from one batched virsh run: the same answer.
    const every = JSON.parse((await runCli(['--json', 'status', 'all'], env)).stdout) as {
      domain: string;
      result?: { disks: { target: string; blockJob?: string }[] };
    }[];
    expect(every.find((e) => e.domain === domain.name)?.result?.disks[0]?.blockJob).toMatch(
      /^Active Block Commit 100% \(ready\)$/,
    );
    await virsh('resume', '--domain', domain.name);
    const aborted = await runCliOk(['repair', domain.name], env);
    expect(aborted.stdout).toMatch(/abort the block job left on disk vda .*: done/);
    expect(await sources(domain.name, false)).toEqual([top]);

    await readyCommit();
    Journal.begin(stateDir, plan('block-commit'));
    await virsh('suspend', '--domain', domain.name);
    // Every mutating verb starts in the same frame: its dry run reports what recovery would do and
    // changes nothing (the journal stays for the repair below, the domain stays paused).
    const dryReplica = path.join(domain.dir, 'dry-replica');
    for (const verb of [
      ['backup', 'incr'],
      ['sync', 'full', '--target', dryReplica],
    ]) {
      const dryVerb = await runCliOk(['--dry-run', ...verb, domain.name], env);
      expect(dryVerb.stderr).toMatch(/would pivot disk vda onto the base/);
      expect(dryVerb.stderr).toMatch(/would resume the domain/);
    }
    expect(existsSync(dryReplica)).toBe(false);
    expect(existsSync(journalFile(stateDir, domain.name))).toBe(true);
    expect(await domainState(domain.name)).toBe('paused');
    const pivoted = await runCliOk(['repair', domain.name], env);
    expect(pivoted.stdout).toMatch(/pivot disk vda onto the base .*: done/);
    expect(pivoted.stdout).toMatch(/resume the domain.*: done/);
    expect(await domainState(domain.name)).toBe('running');
    expect(await sources(domain.name, false)).toEqual([base]);
    expect(await sources(domain.name, true)).toEqual([base]);
    // The emptied layer is in no chain now, yet repair deletes only what a journal step made or
    // doomed: it stays for a human.
    expect(existsSync(top)).toBe(true);
    rmSync(top);
    expect((await runCliOk(['repair', domain.name], env)).stdout).toBe(`${domain.name}: nothing to repair`);
    await runCliOk(['backup', 'incr', domain.name], env);

    // A persistent definition that disagrees with the running disks (a crash before the redefinition).
    const running = (await sources(domain.name, false))[0] ?? '';
    const inactive = (await virsh('dumpxml', '--inactive', '--domain', domain.name)).stdout;
    const stale = path.join(testRoot, `${domain.name}-stale.xml`);
    writeFileSync(stale, inactive.replace(`file='${running}'`, `file='${base}'`));
    await virsh('define', '--file', stale);
    rmSync(stale);
    expect(await sources(domain.name, true)).toEqual([base]);
    const redefined = await runCliOk(['repair', domain.name], env);
    expect(redefined.stdout).toContain(
      `redefine the persistent definition to match the running disks: vda=${running}: done`,
    );
    expect(await sources(domain.name, true)).toEqual([running]);
  });

  it('the guest shutting itself down during a diff: the diff finishes or fails cleanly; repair; the next backup works', async () => {
    await runCliOk(['backup', 'incr', domain.name], env);
    const diff = execa('node', [cliPath, 'backup', 'diff', domain.name], { env, reject: false });
    // The guest's own shutdown (what qemu-ga runs): stops the writer, unmounts, powers off a second later.
    await domain.guestExec(['/bin/shutdown', '-h', '-P', '+0']);
    const outcome = await diff;
    for (let i = 0; i < 120 && (await domain.isActive()); i += 1)
      await new Promise((r) => setTimeout(r, 500));
    if (outcome.exitCode !== 0) expect(outcome.stderr).toMatch(/unifi-backup: .*domain '.*'/);
    await runCliOk(['repair', domain.name], env);
    expect(await domainState(domain.name)).toBe('shut off');
    await runCliOk(['backup', 'incr', domain.name], env);
    await expectDataIntact((await chainOf(domain.name, env)).disks[0]?.layers[0]?.path ?? '', 2);
  });

  for (const verb of verbs)
    it(`shut off: every step of ${verb}`, async () => {
      await faultEveryStep(domain, verb, false);
    });
});

describe('hostile conditions', () => {
  it('two verbs at once, a read-only folder, a full filesystem: clean failures that change nothing', async () => {
    const domain = await domains.create({ disks: 1, writer: false, start: false });
    const listing = () => readdirSync(domain.dir).sort();

    // Two different verbs on one domain at once: the second exits 3 naming the first.
    const holder = execa('node', [cliPath, 'backup', 'incr', domain.name], {
      env: { ...env, UNIFI_BACKUP_FAULT_HOLD_LOCK_MS: '8000' },
      reject: false,
    });
    await new Promise((r) => setTimeout(r, 2500));
    const busy = await runCli(['repair', domain.name], env);
    expect(busy.exitCode).toBe(3);
    expect(busy.stderr).toMatch(new RegExp(`domain '${domain.name}' is busy: 'backup incr' \\(pid \\d+`));
    expect((await holder).exitCode).toBe(0);

    // Root ignores mode bits (chmod 0500 stops nobody here), so the folder is made immutable instead.
    let before = listing();
    const defined = await sources(domain.name, true);
    await execa('chattr', ['+i', domain.dir]);
    try {
      const denied = await runCli(['backup', 'incr', domain.name], env);
      expect(denied.exitCode).toBe(1);
      expect(denied.stderr).toContain(`domain '${domain.name}': cannot write the config dump ${domain.dir}/`);
      expect(denied.stderr).toContain('Nothing in the chain was changed');
    } finally {
      await execa('chattr', ['-i', domain.dir]);
    }
    expect(listing()).toEqual(before);
    expect(await sources(domain.name, true)).toEqual(defined);
    expect((await runCliOk(['--json', 'status', domain.name], env)).stdout).not.toContain('pendingJournal');

    // The folder's filesystem full: a small ext4 on a loop device, mounted over the domain's folder.
    const image = path.join(mkdtempSync(path.join(testRoot, 'loopfs-')), 'fs.img');
    const keep = mkdtempSync(path.join(testRoot, 'keep-'));
    for (const name of listing()) copyFileSync(path.join(domain.dir, name), path.join(keep, name));
    await execa('truncate', ['-s', '48M', image]);
    await execa('mkfs.ext4', ['-q', '-F', image]);
    // Loop devices work on every machine this suite runs on (DESIGN §7): a failure here is a failure.
    await execa('mount', ['-o', 'loop', image, domain.dir]);
    try {
      for (const name of readdirSync(keep)) copyFileSync(path.join(keep, name), path.join(domain.dir, name));
      // As root, dd also fills the blocks ext4 reserves for root.
      await execa('dd', ['if=/dev/zero', `of=${path.join(domain.dir, 'filler')}`, 'bs=64k'], {
        reject: false,
      });
      before = listing();
      const full = await runCli(['backup', 'incr', domain.name], env);
      expect(full.exitCode).toBe(1);
      expect(full.stderr).toMatch(
        new RegExp(`domain '${domain.name}'.*(ENOSPC|No space left).*nothing was changed`),
      );
      expect(listing()).toEqual(before);
      expect(await sources(domain.name, true)).toEqual(defined);
      rmSync(path.join(domain.dir, 'filler'), { force: true });
      await runCliOk(['backup', 'incr', domain.name], env);
      const top = (await chainOf(domain.name, env)).disks[0]?.layers[0]?.path ?? '';
      expect((await checkImage(top)).fsckClean).toBe(true);
    } finally {
      await execa('umount', [domain.dir], { reject: false });
      rmSync(path.dirname(image), { recursive: true, force: true });
      rmSync(keep, { recursive: true, force: true });
    }
  });
});

/**
 * A file the window is done with is gone — unless some other domain's chain on this busy host
 * cannot be read: then invariant 1 keeps it, and the output must say so.
 */
function expectGone(file: string, output: string, what: string): void {
  if (existsSync(file))
    expect(output, `${what}: ${file} left behind`).toMatch(
      new RegExp(`kept ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the chain of .* cannot be read`),
    );
}

/** Some domain on this host has a disk whose file is gone (a leftover): no chain is then trusted. */
async function hostBlind(): Promise<boolean> {
  const names = (await virsh('list', '--all', '--name')).stdout.split('\n').filter((n) => n.trim() !== '');
  for (const name of names) {
    const files = await sources(name.trim(), true).catch(() => []);
    if (files.some((f) => f !== undefined && !existsSync(f))) return true;
  }
  return false;
}

/** What every recovery must leave: invariants 1, 2, 6 and 7 as a user would check them. */
async function expectCoherent(domain: TestDomain, running: boolean, what: string): Promise<void> {
  expect(await domainState(domain.name), what).toBe(running ? 'running' : 'shut off');
  const chain = await chainOf(domain.name, env);
  for (const file of layerPaths(chain)) expect(existsSync(file), `${what}: ${file}`).toBe(true);
  expect(await sources(domain.name, true), what).toEqual(await sources(domain.name, false));
  expect(existsSync(journalFile(stateDir, domain.name)), what).toBe(false);
}

const maintenanceVerbs = ['enter', 'save', 'drop'] as const;
type MaintenanceVerb = (typeof maintenanceVerbs)[number];

/**
 * Kills `maintenance VERB` after step K (0: enter's record written; past the plan: the memory
 * state removed, then the record), runs `repair`, and proves what repair left is coherent. A window
 * still open is then ended the way a user would — `save` or `drop` run again (`save` after an
 * enter) — and must end cleanly; the next backup succeeds and the guest's records survived.
 */
async function maintenanceKillRepairCheck(
  domain: TestDomain,
  verb: MaintenanceVerb,
  k: number,
  running: boolean,
  memoryDir: string,
): Promise<boolean> {
  const what = `maintenance ${verb} killed after step ${k} (${running ? 'running' : 'shut off'})`;
  const enter = ['maintenance', 'enter', ...(running ? ['-s', memoryDir] : []), domain.name];
  if (verb !== 'enter') await runCliOk(enter, env);
  const before = maintenanceStatus(stateDir, domain.name);
  const killed = await runCli(verb === 'enter' ? enter : ['maintenance', verb, domain.name], {
    ...env,
    UNIFI_BACKUP_FAULT_KILL_AFTER_STEP: String(k),
  });
  const completed = killed.exitCode === 0;
  const open = maintenanceStatus(stateDir, domain.name).inMaintenance;
  const repaired = await runCliOk(['repair', domain.name], env);
  await expectCoherent(domain, running, `${what}, repaired`);
  const status = maintenanceStatus(stateDir, domain.name);
  // repair finishes a drop the kill left unfinished, window and all.
  if (verb === 'drop' && !completed && open) {
    expect(repaired.stdout, what).toContain("the interrupted 'maintenance drop'");
    expect(status.inMaintenance, what).toBe(false);
  }
  let output = `${killed.stdout}\n${repaired.stdout}`;
  if (status.inMaintenance) {
    const again = await runCliOk(['maintenance', verb === 'enter' ? 'save' : verb, domain.name], env);
    output += `\n${again.stdout}`;
    await expectCoherent(domain, running, `${what}, window ended`);
    expect(maintenanceStatus(stateDir, domain.name).inMaintenance, what).toBe(false);
  }
  const chain = await chainOf(domain.name, env);
  expect(
    chain.disks.flatMap((d) => d.layers.filter((l) => l.kind === 'maintenance')),
    what,
  ).toEqual([]);
  const window = before.inMaintenance ? before : status;
  for (const file of window.disks.map((m) => m.layer)) expectGone(file, output, what);
  // Only the run that deleted the memory state can say it kept it: killed, its word is lost.
  const blind = !completed && (await hostBlind());
  for (const file of readdirSync(memoryDir).map((f) => path.join(memoryDir, f)))
    if (!blind) expectGone(file, output, what);
  // Kept for a good reason, said so: out of the way of the next check.
  for (const f of readdirSync(memoryDir)) rmSync(path.join(memoryDir, f));
  await runCliOk(['backup', 'incr', domain.name], env);
  const vda = (await chainOf(domain.name, env)).disks.find((d) => d.target === 'vda');
  await expectDataIntact((running ? vda?.layers[1]?.path : vda?.layers[0]?.path) ?? '', 1);
  return completed;
}

describe('maintenance enter, save and drop killed after any step, then repair', () => {
  let domain: TestDomain;
  let memoryDir: string;
  beforeAll(async () => {
    domain = await domains.create({ disks: 1 });
    memoryDir = mkdtempSync(path.join(testRoot, 'memory-'));
    await waitForSeq(domain, 'vda', 2);
    await runCliOk(['backup', 'incr', domain.name], env);
  });
  afterAll(() => {
    rmSync(memoryDir, { recursive: true, force: true });
  });

  for (const running of [true, false])
    for (const verb of maintenanceVerbs)
      it(`${running ? 'running' : 'shut off'}: every step of maintenance ${verb}`, async () => {
        if (!running && (await domain.isActive())) await domain.shutdown();
        for (let k = verb === 'enter' ? 0 : 1, completed = false; !completed; k += 1) {
          const started = Date.now();
          completed = await maintenanceKillRepairCheck(domain, verb, k, running, memoryDir);
          console.log(
            `maintenance ${verb} K=${k} (${running ? 'running' : 'shut off'}): ${Date.now() - started} ms`,
          );
          expect(k, `maintenance ${verb} has no end`).toBeLessThan(12);
        }
        // Keeps the chain short for the next verb.
        await runCliOk(['backup', 'full', domain.name], env);
      });
});

/** libvirtd's pid, from the pid file it writes when started with -d. */
function libvirtdPid(): number | undefined {
  try {
    const pid = Number(readFileSync('/run/libvirtd.pid', 'utf8').trim());
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/**
 * libvirt can leave a removed domain's config file behind; a restarted libvirtd would bring such a
 * test domain back, with its files gone, and every purge after it would keep files for it. Only
 * `ubt-` test domains that were not defined before the stop are removed.
 */
function forgetStaleTestDomains(defined: readonly string[]): void {
  const dir = '/etc/libvirt/qemu';
  for (const file of readdirSync(dir))
    if (file.startsWith('ubt-') && file.endsWith('.xml') && !defined.includes(file.slice(0, -4)))
      rmSync(path.join(dir, file));
}

async function waitFor(what: string, condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; Date.now() < end;)
    if (await condition()) return;
    else await new Promise((r) => setTimeout(r, 100));
  throw new Error(`timed out waiting for ${what}`);
}

async function libvirtdAnswers(): Promise<boolean> {
  return (await execa('virsh', ['list', '--all', '--name'], { reject: false })).exitCode === 0;
}

/** Starts libvirtd again if it is not running, and waits until it answers. */
async function ensureLibvirtd(): Promise<void> {
  if (!(await libvirtdAnswers()) && libvirtdPid() === undefined) await execa('libvirtd', ['-d']);
  await waitFor('libvirtd to answer', libvirtdAnswers);
}

/** A folder holding a virsh that starts every blockpull and blockcommit at 1 MiB/s. */
function throttlingVirsh(): string {
  return virshWrapper(
    (real) =>
      `for a in "$@"; do case "$a" in blockpull|blockcommit) exec '${real}' "$@" --bandwidth 1;; esac; done\nexec '${real}' "$@"`,
  );
}

/**
 * Starts `backup VERB` on a domain with 320 MB above its base, throttles its block job to 1 MiB/s,
 * restarts libvirtd under it, and proves: our run waits it out or fails naming the domain and
 * `repair`; the domain runs, the definitions agree, the chain ends on the base, the next backup works
 * and the guest's records survived.
 */
async function restartDuring(verb: 'full' | 'diff'): Promise<void> {
  const job =
    verb === 'full' ? { status: /active-commit/, type: /commit/i } : { status: /type='pull'/, type: /pull/i };
  const domain = await domains.create({ disks: 1, diskSizeMiB: 512 });
  await waitForSeq(domain, 'vda', 2);
  await runCliOk(['backup', 'incr', domain.name], env);
  // Enough data above the base that the job lasts long enough to be seen and slowed down.
  await domain.guestExec(['dd', 'if=/dev/zero', 'of=/mnt/vda/fill', 'bs=1M', 'count=320']);
  await domain.guestExec(['sync']);
  await runCliOk(['backup', 'incr', domain.name], env);
  const base = domain.disks[0]?.path ?? '';
  // libvirt's own record of the running domain names the job as soon as it starts: cheap to poll.
  const status = `/run/libvirt/qemu/${domain.name}.xml`;
  const jobInfo = async () =>
    parseBlockJobInfo(
      (
        await execa('virsh', ['blockjob', '--domain', domain.name, '--path', 'vda', '--info', '--raw'], {
          reject: false,
        })
      ).stdout,
    );
  const bandwidth = (mib: number) =>
    execa('virsh', ['blockjob', '--domain', domain.name, '--path', 'vda', '--bandwidth', String(mib)]);

  // The job starts at 1 MiB/s (started on libvirt's own connection, the fault setting; started by
  // virsh, a virsh that adds --bandwidth 1 to blockpull/blockcommit): a fast job cannot end before
  // the test slows it down and restarts libvirtd under it.
  const run = execa('node', [cliPath, 'backup', verb, domain.name], {
    env: {
      ...env,
      PATH: `${throttlingVirsh()}:${process.env.PATH ?? ''}`,
      UNIFI_BACKUP_FAULT_JOB_MIB_S: '1',
    },
    reject: false,
  });
  let seen = false;
  try {
    for (const end = Date.now() + 120_000; !seen && run.exitCode === null && Date.now() < end;) {
      seen = job.status.test(readFileSync(status, 'utf8'));
      if (!seen) await new Promise((r) => setTimeout(r, 2));
    }
    expect(seen, `the block job of ${verb} was never seen running`).toBe(true);
    // 1 MiB/s: the job outlives libvirtd's restart.
    await bandwidth(1);
    expect((await jobInfo())?.ready, 'the block job was already done').toBe(false);
    const defined = (await virsh('list', '--all', '--name')).stdout.split('\n');
    const pid = libvirtdPid();
    expect(pid, 'libvirtd has no pid file').toBeDefined();
    process.kill(pid ?? 0, 'SIGTERM');
    await waitFor('libvirtd to stop', () => Promise.resolve(libvirtdPid() === undefined));
    forgetStaleTestDomains(defined);
    // Long enough for our run to meet the closed connection.
    await new Promise((r) => setTimeout(r, 2000));
    await execa('libvirtd', ['-d']);
    await waitFor('libvirtd to answer', libvirtdAnswers);
  } finally {
    await ensureLibvirtd();
  }
  // QEMU ran on without libvirtd: the guest still writes, and libvirtd found the job again.
  expect(await domainState(domain.name)).toBe('running');
  const seq = await domain.lastSeq('vda');
  await waitForSeq(domain, 'vda', seq + 2);
  const left = await jobInfo();
  if (run.exitCode === null) expect(left?.type).toMatch(job.type);
  // Unthrottled, the job finishes (a commit gets ready): our run, if it waited, or repair ends it.
  if (left !== undefined) await bandwidth(0);
  const outcome = await run;
  console.log(`backup ${verb} across a libvirtd restart: exit ${outcome.exitCode}; ${outcome.stderr.trim()}`);
  if (outcome.exitCode !== 0) {
    expect(outcome.stderr).toMatch(/unifi-backup: .*domain '.*'.*repair/s);
    if (verb === 'full')
      await waitFor('the block commit to be ready', async () => (await jobInfo())?.ready !== false, 120_000);
  }
  const repaired = await runCliOk(['repair', domain.name], env);
  console.log(`repair after the libvirtd restart: ${repaired.stdout}`);
  if (outcome.exitCode === 0) expect(repaired.stdout).toBe(`${domain.name}: nothing to repair`);
  else if (verb === 'full') expect(repaired.stdout).toMatch(/pivot disk vda onto the base .*: done/);
  await expectCoherent(domain, true, `${verb} across the libvirtd restart, repaired`);
  const chain = (await chainOf(domain.name, env)).disks[0]?.layers.map((l) => l.path);
  expect(chain?.at(-1)).toBe(base);
  // A run that completed made its new incr: on the base (full), or on the diff that took it all (diff).
  if (outcome.exitCode === 0)
    expect(shapeOf(await chainOf(domain.name, env))).toEqual({
      vda: verb === 'full' ? ['incr', 'base'] : ['incr', 'diff', 'base'],
    });
  else if (verb === 'full') expect(chain).toHaveLength(1);
  await runCliOk(['backup', 'incr', domain.name], env);
  const vda = (await chainOf(domain.name, env)).disks[0];
  await expectDataIntact(vda?.layers[1]?.path ?? '', 2);
}

describe('libvirtd restarted in the middle of a block job', () => {
  it('backup full (active commit): our run waits it out or fails cleanly; the commit ends pivoted as planned; the next backup works', async () => {
    await restartDuring('full');
  });

  it('backup diff (pull): our run waits it out or fails cleanly; the chain ends merged or repaired; the next backup works', async () => {
    await restartDuring('diff');
  });
});
