import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { guestExec } from '../test/rig/agent.js';
import { cleanupAll, createTestDomain } from '../test/rig/domain.js';
import type { TestDomain } from '../test/rig/domain.js';
import { domainXml } from '../test/rig/domain-xml.js';
import { guestDir, testRoot } from '../test/rig/rig-paths.js';
import { makeExt4Qcow2 } from '../test/rig/test-disk.js';
import { localRepository } from '../test/ops/repositories.js';

/**
 * `npm run bench`: every number is a ratio against a baseline measured in the same run, because
 * the machines this runs on are shared and noisy. Prints a Markdown table for docs/performance.md.
 */
const cli = path.resolve('dist/unifi-backup.js');
const cache = path.resolve('.cache/bench');
const work = path.join(testRoot, `bench-${process.pid}`);
/**
 * The caller's environment without NODE_EXTRA_CA_CERTS, which some machines set for other tools
 * (the one these numbers come from does): every node start then parses the whole CA bundle, about
 * 50 ms, which a root cron job or a systemd timer on a Debian host does not pay.
 */
function inherited(): NodeJS.ProcessEnv {
  const copy = { ...process.env };
  delete copy.NODE_EXTRA_CA_CERTS;
  return copy;
}
const env = {
  ...inherited(),
  UNIFI_BACKUP_LOCK_DIR: path.join(work, 'lock'),
  UNIFI_BACKUP_STATE_DIR: path.join(work, 'state'),
  NO_COLOR: '1',
};
const rows: string[][] = [];

interface Run {
  readonly ms: number;
  readonly stdout: string;
  readonly maxRssKiB: number;
}

/** Runs a program, fails loudly, returns its wall time; GNU time gives the peak resident memory. */
function run(
  argv: readonly string[],
  options: { env?: NodeJS.ProcessEnv; user?: string; cwd?: string } = {},
): Run {
  const rssFile = path.join(os.tmpdir(), `bench-rss-${process.pid}`);
  // Outside runuser, so the bench user need not write the file; %M is the largest descendant.
  const inner = options.user === undefined ? argv : ['runuser', '-u', options.user, '--', ...argv];
  const full = ['/usr/bin/time', '-f', '%M', '-o', rssFile, ...inner];
  const started = process.hrtime.bigint();
  const result = spawnSync(full[0] ?? '', full.slice(1), {
    env: options.env ?? env,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0)
    throw new Error(`${argv.join(' ')} exited ${result.status}: ${result.stderr}${result.stdout}`);
  const rss = spawnSync('cat', [rssFile], { encoding: 'utf8' }).stdout.trim().split('\n').at(-1) ?? '0';
  return { ms, stdout: result.stdout, maxRssKiB: Number(rss) };
}

const ub = (...args: string[]) => run(['node', cli, ...args]);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] ?? NaN;
const fmt = (n: number, digits = 2) => n.toFixed(digits);
const mib = (bytes: number) => `${fmt(bytes / 2 ** 20, 1)} MiB`;

function record(what: string, measured: string, baseline: string, ratio: number, target: string): void {
  const ok = target.startsWith('≤') ? ratio <= Number(target.slice(1)) : ratio < Number(target.slice(1));
  rows.push([what, measured, baseline, fmt(ratio), target, ok ? 'met' : 'MISSED']);
  process.stderr.write(`bench: ${what}: ${fmt(ratio)} (target ${target})\n`);
}

/** A 2 GiB ext4 image holding 1 GiB of random data, made once: mkfs.ext4 -d copies a folder in. */
async function dataImage(): Promise<string> {
  const image = path.join(cache, 'data-2g.qcow2');
  if (existsSync(image)) return image;
  await mkdir(cache, { recursive: true });
  const folder = path.join(work, 'fill');
  await mkdir(folder, { recursive: true });
  run(['dd', 'if=/dev/urandom', `of=${folder}/random.bin`, 'bs=4M', 'count=256', 'status=none']);
  const raw = path.join(work, 'data.raw');
  run(['truncate', '-s', '2G', raw]);
  run(['mkfs.ext4', '-F', '-q', '-d', folder, raw]);
  run(['qemu-img', 'convert', '-O', 'qcow2', raw, `${image}.tmp`]);
  await rm(raw);
  await rm(folder, { recursive: true });
  run(['mv', `${image}.tmp`, image]);
  return image;
}

/** The tiny guest with the bench data disk, started; its writer stays off so writes are ours alone. */
async function benchDomain(): Promise<TestDomain> {
  const domain = await createTestDomain({ disks: 1, diskSizeMiB: 16, start: false, writer: false });
  const disk = domain.disks[0];
  if (disk === undefined) throw new Error('the bench domain has no disk');
  await copyFile(await dataImage(), disk.path);
  await domain.start();
  await domain.waitForAgent(180_000);
  return domain;
}

async function guestWrite(domain: TestDomain, file: string, mebibytes: number): Promise<number> {
  // A TCG guest writes a few MiB/s on a busy host: allow a second per MiB.
  const result = await guestExec(
    domain.name,
    ['dd', 'if=/dev/urandom', `of=/mnt/vda/${file}`, 'bs=1M', `count=${mebibytes}`, 'conv=fsync'],
    Math.max(30_000, mebibytes * 1000),
  );
  if (result.exitCode !== 0)
    throw new Error(`dd in ${domain.name} exited ${result.exitCode}: ${result.stderr}`);
  const clusters = Math.ceil((mebibytes * 2 ** 20) / 65536);
  return clusters * 65536;
}

function chainOf(domain: string): string[] {
  const report = JSON.parse(ub('--json', 'backup', 'showchain', domain).stdout) as {
    disks: { layers: { path: string }[] }[];
  };
  return report.disks[0]?.layers.map((l) => l.path) ?? [];
}

function startup(): void {
  const node: number[] = [];
  const tool: number[] = [];
  for (let i = 0; i < 15; i++) {
    node.push(run(['node', '-e', '0']).ms);
    tool.push(ub('--version').ms);
  }
  record(
    '2. start-up: `--version` ÷ `node -e 0`',
    `${fmt(median(tool), 0)} ms`,
    `${fmt(median(node), 0)} ms`,
    median(tool) / median(node),
    '≤2',
  );
}

/** One bare external snapshot of vda, as a user would type it; its wall time. */
function bareSnapshot(domain: string, file: string): number {
  const diskspec = `vda,snapshot=external,file=${file}`;
  const flags = ['--disk-only', '--atomic', '--no-metadata', '--diskspec', diskspec];
  return run(['virsh', 'snapshot-create-as', '--domain', domain, ...flags]).ms;
}

function snapshots(domain: TestDomain): void {
  ub('backup', 'enable', domain.name);
  const ours: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < 3; i++) {
    ours.push(ub('backup', 'incr', domain.name).ms);
    const file = path.join(domain.dir, `vda.bare-${i}.qcow2`);
    bare.push(bareSnapshot(domain.name, file));
  }
  record(
    '1. `backup incr` ÷ bare `virsh snapshot-create-as`',
    `${fmt(median(ours), 0)} ms`,
    `${fmt(median(bare), 0)} ms`,
    median(ours) / median(bare),
    '≤1.5',
  );
}

/** restic's own `backup --json` summary. */
interface ResticSummary {
  readonly data_added: number;
}

/** The same as `run` reports it. */
interface OurSummary {
  readonly bytesRead: number;
  readonly bytesAdded: number;
}

async function resticReads(domain: TestDomain, configFile: string): Promise<void> {
  ub('--json', 'run', 'incr', domain.name, '--config', configFile, '--init');
  const written = await guestWrite(domain, 'incr-1.bin', 64);
  const result = JSON.parse(ub('--json', 'run', 'incr', domain.name, '--config', configFile).stdout) as {
    restic?: OurSummary;
  };
  const read = result.restic?.bytesRead ?? NaN;
  const chain = chainOf(domain.name);
  const wholeDisk = (await Promise.all(chain.map(async (f) => (await stat(f)).size))).reduce(
    (a, b) => a + b,
    0,
  );
  record(
    '3. bytes restic reads on an incr ÷ bytes written (64 KiB clusters)',
    mib(read),
    mib(written),
    read / written,
    '≤1.2',
  );
  rows.push([
    '   the whole disk file instead',
    mib(wholeDisk),
    mib(written),
    fmt(wholeDisk / written),
    '',
    '',
  ]);
}

function convertBaseline(domain: string): number {
  const chain = chainOf(domain);
  const base = chain.at(-1) ?? '';
  const frozenTop = chain[1] ?? '';
  const out = path.join(work, 'convert.qcow2');
  const ms = run(['qemu-img', 'convert', '-U', '-O', 'qcow2', '-B', base, '-F', 'qcow2', frozenTop, out]).ms;
  spawnSync('rm', ['-f', out]);
  return ms;
}

async function consolidation(domain: TestDomain): Promise<void> {
  for (const level of ['diff', 'full'] as const) {
    await guestWrite(domain, `${level}-a.bin`, 128);
    ub('backup', 'incr', domain.name);
    await guestWrite(domain, `${level}-b.bin`, 128);
    ub('backup', 'incr', domain.name);
    const baseline = convertBaseline(domain.name);
    const ours = ub('backup', level, domain.name).ms;
    record(
      `4. \`backup ${level}\` ÷ \`qemu-img convert\` of the same layers`,
      `${fmt(ours, 0)} ms`,
      `${fmt(baseline, 0)} ms`,
      ours / baseline,
      '≤1.3',
    );
  }
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  return total;
}

async function virtnbdbackup(
  domain: TestDomain,
  configFile: string,
  passwordFile: string,
  repo: string,
): Promise<void> {
  if (!existsSync('/usr/bin/virtnbdbackup')) {
    rows.push(['7. virtnbdbackup', 'not installed', '', '', '', '']);
    return;
  }
  const out = path.join(work, 'virtnbd');
  const resticEnv = { ...env, RESTIC_REPOSITORY: repo, RESTIC_PASSWORD_FILE: passwordFile };
  const backupOf = (dir: string) =>
    JSON.parse(
      run(['restic', 'backup', '--json', '--quiet', dir], { env: resticEnv })
        .stdout.trim()
        .split('\n')
        .at(-1) ?? '{}',
    ) as ResticSummary;
  try {
    run(['virtnbdbackup', '-d', domain.name, '-l', 'full', '-o', out]);
    backupOf(out);
    await guestWrite(domain, 'nbd-1.bin', 64);
    const theirs = run(['virtnbdbackup', '-d', domain.name, '-l', 'inc', '-o', out]).ms;
    const theirBytes = backupOf(out).data_added;
    ub('--json', 'run', 'incr', domain.name, '--config', configFile);
    await guestWrite(domain, 'nbd-2.bin', 64);
    const ours = JSON.parse(ub('--json', 'run', 'incr', domain.name, '--config', configFile).stdout) as {
      restic?: OurSummary;
      durationMs: number;
    };
    rows.push([
      '7. one incremental: `run incr` vs virtnbdbackup -l inc',
      `${fmt(ours.durationMs, 0)} ms`,
      `${fmt(theirs, 0)} ms`,
      fmt(ours.durationMs / theirs),
      '',
      '',
    ]);
    rows.push([
      '   restic data added: ours vs its output',
      mib(ours.restic?.bytesAdded ?? NaN),
      mib(theirBytes),
      fmt((ours.restic?.bytesAdded ?? NaN) / theirBytes),
      '',
      '',
    ]);
    rows.push(['   its output folder', mib(await folderBytes(out)), '', '', '', '']);
  } catch (error) {
    rows.push([
      '7. virtnbdbackup',
      `failed: ${(error as Error).message.split('\n').slice(0, 2).join(' ')}`,
      '',
      '',
      '',
      '',
    ]);
  }
}

/**
 * `all` lists every domain of the connection, and other domains on this host are not ours to
 * snapshot: the many-domain runs use a libvirt session of a bench user, where only ours exist.
 */
const benchUser = 'unifi-backup-bench';

async function manyDomains(): Promise<void> {
  if (spawnSync('id', [benchUser]).status !== 0) run(['useradd', '--system', '--create-home', benchUser]);
  const uid = spawnSync('id', ['-u', benchUser], { encoding: 'utf8' }).stdout.trim();
  const home = `/home/${benchUser}`;
  const runtime = `/run/user/${uid}`;
  run(['install', '-d', '-o', benchUser, '-m', '700', runtime]);
  const dir = path.join(home, 'domains');
  const userEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    XDG_RUNTIME_DIR: runtime,
    LIBVIRT_DEFAULT_URI: 'qemu:///session',
    UNIFI_BACKUP_LOCK_DIR: path.join(home, 'lock'),
    UNIFI_BACKUP_STATE_DIR: path.join(home, 'state'),
    NO_COLOR: '1',
  };
  const as = (argv: string[]) => run(argv, { env: userEnv, user: benchUser });
  const virshAs = (...args: string[]) => as(['virsh', '--connect', 'qemu:///session', ...args]);
  for (const name of virshAs('list', '--all', '--name')
    .stdout.split('\n')
    .filter((n) => n.trim() !== '')) {
    // A domain left running (by hand) would stay behind as a transient one after undefine.
    spawnSync('runuser', ['-u', benchUser, '--', 'virsh', '--connect', 'qemu:///session', 'destroy', name], {
      env: userEnv,
    });
    virshAs('undefine', '--domain', name);
  }
  const xmlFiles = await shutOffDomains(dir, 'bench', 50);
  run(['chown', '-R', `${benchUser}:`, home]);
  for (const xmlFile of xmlFiles) virshAs('define', '--file', xmlFile);
  const ubAs = (...args: string[]) => as(['node', cli, ...args]);
  ubAs('backup', 'enable', 'all');

  const status = ubAs('status', 'all');
  const showchain = ubAs('backup', 'showchain', 'all');
  const files = ubAs('files', 'all');
  const node = run(['node', '-e', '0']).ms;
  underASecond('6. `status all`, 50 shut-off domains', status.ms);
  underASecond('   `backup showchain all`, 50 shut-off domains', showchain.ms);
  underASecond('   `files all`, 50 shut-off domains', files.ms, `node -e 0: ${fmt(node, 0)} ms`);
  for (const jobs of [2, 4])
    underASecond(`   \`files all --jobs ${jobs}\``, ubAs('--jobs', String(jobs), 'files', 'all').ms, '');
  const memory = Math.max(status.maxRssKiB, showchain.maxRssKiB, files.maxRssKiB);

  for (let i = 20; i < 50; i++) virshAs('undefine', '--domain', `bench-${String(i).padStart(2, '0')}`);
  const sequential = ubAs('backup', 'incr', 'all');
  const parallel = ubAs('--jobs', '4', 'backup', 'incr', 'all');
  record(
    '5. `backup incr all`, 20 domains: `--jobs 4` ÷ sequential',
    `${fmt(parallel.ms, 0)} ms`,
    `${fmt(sequential.ms, 0)} ms`,
    parallel.ms / sequential.ms,
    '≤0.4',
  );
  const rss = Math.max(memory, sequential.maxRssKiB, parallel.maxRssKiB) / 1024;
  memoryRow('memory: peak RSS of the tool, `all` over 50 / 20 domains', rss);
  for (let i = 0; i < 20; i++) virshAs('undefine', '--domain', `bench-${String(i).padStart(2, '0')}`);
  await rm(dir, { recursive: true, force: true });
}

/** The memory target is absolute: under 100 MiB. */
function memoryRow(what: string, mebibytes: number): void {
  rows.push([
    what,
    `${fmt(mebibytes, 1)} MiB`,
    '< 100 MiB',
    fmt(mebibytes / 100),
    '<1',
    mebibytes < 100 ? 'met' : 'MISSED',
  ]);
}

/** Target 6 is absolute: under one second. */
function underASecond(what: string, ms: number, baseline = '< 1000 ms'): void {
  rows.push([what, `${fmt(ms, 0)} ms`, baseline, fmt(ms / 1000), '<1', ms < 1000 ? 'met' : 'MISSED']);
}

/**
 * `count` shut-off domains PREFIX-000… in `dir`, each with a small ext4 qcow2 disk of its own;
 * returns their definition files, for the caller to define on its connection.
 */
async function shutOffDomains(dir: string, prefix: string, count: number): Promise<string[]> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const template = path.join(work, 'small.qcow2');
  if (!existsSync(template)) await makeExt4Qcow2(template, 16);
  const xmlFiles: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `${prefix}-${String(i).padStart(count > 100 ? 3 : 2, '0')}`;
    const disk = path.join(dir, name, 'vda.qcow2');
    await mkdir(path.dirname(disk), { recursive: true });
    await copyFile(template, disk);
    const xmlFile = path.join(dir, name, 'domain.xml');
    await writeFile(
      xmlFile,
      domainXml({
        name,
        kernel: path.join(guestDir, 'vmlinuz'),
        initrd: path.join(guestDir, 'initrd.img'),
        cmdline: 'console=ttyS0 quiet',
        consoleLog: path.join(dir, name, 'console.log'),
        disks: [{ target: 'vda', path: disk, format: 'qcow2' }],
      }),
    );
    xmlFiles.push(xmlFile);
  }
  return xmlFiles;
}

/**
 * 200 shut-off domains on the system connection of test/rig/isolated.sh's private libvirtd, where
 * nobody else sees them (and no other domain is in `all`): `status all` and `files all` each under
 * a second, with their peak memory.
 */
async function fleet(): Promise<void> {
  if (process.env.UNIFI_ISOLATED_INSIDE !== '1') {
    rows.push([
      'fleet: not run',
      'run it as: bash test/rig/isolated.sh node build/bench.js fleet',
      '',
      '',
      '',
      '',
    ]);
    return;
  }
  const uri = 'qemu:///system';
  const defined = run(['virsh', '--connect', uri, 'list', '--all', '--name'])
    .stdout.split('\n')
    .filter((name) => name.trim() !== '');
  if (defined.length > 0) throw new Error(`the private libvirtd already has domains: ${defined.join(', ')}`);
  const xmlFiles = await shutOffDomains(path.join(work, 'fleet'), 'fleet', 200);
  for (const xmlFile of xmlFiles) run(['virsh', '--connect', uri, 'define', '--file', xmlFile]);
  const ubOn = (...args: string[]) => ub('--connect', uri, ...args);
  ubOn('backup', 'enable', 'all');
  const status = ubOn('status', 'all');
  const files = ubOn('files', 'all');
  const node = run(['node', '-e', '0']).ms;
  underASecond('6. `status all`, 200 shut-off domains', status.ms);
  underASecond('   `files all`, 200 shut-off domains', files.ms, `node -e 0: ${fmt(node, 0)} ms`);
  const rss = Math.max(status.maxRssKiB, files.maxRssKiB) / 1024;
  memoryRow('memory: peak RSS of `status all` / `files all`, 200 domains', rss);
  for (let i = 0; i < xmlFiles.length; i++)
    run(['virsh', '--connect', uri, 'undefine', '--domain', `fleet-${String(i).padStart(3, '0')}`]);
}

/** The original bash script (self-update disabled), beside this repository's folder. */
const seedDir = path.resolve('../shared/reference/seed');

/** Both tools name layers by the second: each run starts in a second of its own. */
async function nextSecond(): Promise<void> {
  await sleep(1020 - (Date.now() % 1000));
}

/**
 * Each verb of ours against the original script's on one running 2-disk guest (writer on),
 * interleaved and alternating who goes first; before a diff or full both tools add an incr, so
 * each consolidation finds the same number of layers.
 */
async function originalScript(): Promise<void> {
  const script = path.join(seedDir, 'unifi-backup.sh');
  if (!existsSync(script)) {
    rows.push(['8. the original script', `not found at ${script}`, '', '', '', '']);
    return;
  }
  const domain = await createTestDomain({ disks: 2 });
  // Run from its own folder, as its README says.
  const seed = (level: string) =>
    run(['./unifi-backup.sh', '-a', 'backup', '-m', level, domain.name], { cwd: seedDir });
  const ours = (level: string) => ub('backup', level, domain.name);
  ours('enable');
  const targets = { incr: '≤1.0', diff: '≤0.6', full: '≤0.6' } as const;
  for (const level of ['incr', 'diff', 'full'] as const) {
    const times = { ours: [] as number[], seed: [] as number[] };
    for (let i = 0; i < (level === 'incr' ? 7 : 5); i++) {
      const pair = i % 2 === 0 ? (['ours', 'seed'] as const) : (['seed', 'ours'] as const);
      for (const who of pair) {
        if (level !== 'incr') {
          await nextSecond();
          ours('incr');
          await nextSecond();
          seed('incr');
        }
        await nextSecond();
        times[who].push((who === 'ours' ? ours : seed)(level).ms);
      }
    }
    record(
      `8. \`backup ${level}\` ÷ the original script's, running 2-disk guest`,
      `${fmt(median(times.ours), 0)} ms`,
      `${fmt(median(times.seed), 0)} ms`,
      median(times.ours) / median(times.seed),
      targets[level],
    );
  }
  await domain.destroy();
}

/**
 * Opt-in (`npm run bench -- large`): 2 GiB written across four incr layers of a running domain,
 * then consolidated by `backup diff` / `backup full` and, from the same kind of chain, by a bare
 * `virsh blockpull` / `blockcommit --active --pivot`. What ours adds must be a fixed cost. Ours
 * also deletes the merged layers, which the bare command leaves: a second row adds their `rm` to the
 * baseline. Every measured run starts after a `sync`, so none pays for the previous one's writeback.
 * Each level is measured three times, alternating which of the two goes first, and the medians are
 * compared: one run of either moved by 15 % from one bench to the next.
 */
async function largeData(): Promise<void> {
  const domain = await benchDomain();
  ub('backup', 'enable', domain.name);
  // Every measurement starts from a chain that is the base alone, so ours and the bare command
  // consolidate the same four layers (a bare pull leaves its own top in the chain).
  const layers = async (tag: string) => {
    await nextSecond();
    ub('backup', 'full', domain.name);
    for (let i = 0; i < 4; i++) {
      await guestWrite(domain, `${tag}-${i}.bin`, 512);
      await domain.guestExec(['rm', '-f', `/mnt/vda/${tag}-${i}.bin`]);
      await nextSecond();
      ub('backup', 'incr', domain.name);
    }
    run(['sync']);
  };
  const virsh = (...args: string[]) => run(['virsh', '--connect', 'qemu:///system', ...args]).ms;
  const vda = ['--domain', domain.name, '--path', 'vda'];
  // The bare consolidation's time, and that of deleting the layers it merged.
  const bare = {
    diff: async () => {
      await layers('pull');
      const chain = chainOf(domain.name);
      const snapshot = bareSnapshot(domain.name, path.join(domain.dir, 'vda.bare-pull.qcow2'));
      const pull = virsh('blockpull', ...vda, '--base', chain.at(-1) ?? '', '--wait');
      return { ms: snapshot + pull, rmMs: run(['rm', ...chain.slice(0, -1)]).ms };
    },
    full: async () => {
      await layers('commit');
      const chain = chainOf(domain.name);
      const commit = virsh('blockcommit', ...vda, '--active', '--pivot', '--wait');
      return { ms: commit, rmMs: run(['rm', ...chain.slice(0, -1)]).ms };
    },
  };
  const baselines = {
    diff: 'bare snapshot + `virsh blockpull`',
    full: 'bare `virsh blockcommit --active --pivot`',
  };
  for (const level of ['diff', 'full'] as const) {
    const times = { ours: [] as number[], bare: [] as number[], rm: [] as number[] };
    const measureOurs = async () => {
      await layers(level);
      await nextSecond();
      run(['sync']);
      times.ours.push(ub('backup', level, domain.name).ms);
    };
    const measureBare = async () => {
      const baseline = await bare[level]();
      times.bare.push(baseline.ms);
      times.rm.push(baseline.rmMs);
    };
    for (let i = 0; i < 3; i++)
      for (const measure of i % 2 === 0 ? [measureBare, measureOurs] : [measureOurs, measureBare])
        await measure();
    const whole = (values: number[]) => values.map((ms) => fmt(ms, 0)).join(', ');
    process.stderr.write(
      `bench: 9. ${level}: ours ${whole(times.ours)} ms; bare ${whole(times.bare)} ms; rm ${whole(times.rm)} ms\n`,
    );
    const [ours, baseline, rm] = [median(times.ours), median(times.bare), median(times.rm)];
    const what = `9. \`backup ${level}\` of 2 GiB in 4 incr layers ÷ ${baselines[level]} (medians of 3)`;
    record(what, `${fmt(ours, 0)} ms`, `${fmt(baseline, 0)} ms`, ours / baseline, '≤1.3');
    record(
      `${what} + \`rm\` of the merged layers`,
      `${fmt(ours, 0)} ms`,
      `${fmt(baseline, 0)} + ${fmt(rm, 0)} ms`,
      ours / (baseline + rm),
      '≤1.3',
    );
  }
  await domain.destroy();
}

function machine(): string[] {
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  return [
    `- CPU: ${cpu}, ${os.availableParallelism()} cores (nproc)`,
    `- memory: ${fmt(os.totalmem() / 2 ** 30, 1)} GiB; load average at start: ${os
      .loadavg()
      .map((l) => fmt(l, 1))
      .join(' ')}`,
    `- ${os.type()} ${os.release()}, Node ${process.version}`,
    ...(process.env.NODE_EXTRA_CA_CERTS === undefined
      ? []
      : ['- NODE_EXTRA_CA_CERTS is set here: every run has it removed (see `inherited`)']),
  ];
}

async function main(): Promise<void> {
  const header = machine();
  await mkdir(work, { recursive: true });
  const only = process.argv.slice(2);
  const wanted = (n: string) => only.length === 0 || only.includes(n);
  const group = async (name: string, body: () => Promise<void>) => {
    if (!wanted(name)) return;
    try {
      await body();
    } catch (error) {
      process.stderr.write(`bench: ${name} stopped: ${String((error as Error).stack)}\n`);
      rows.push([`${name}: stopped`, (error as Error).message.split('\n')[0] ?? '', '', '', '', '']);
    }
  };
  try {
    if (wanted('startup')) startup();
    await group('domain', async () => {
      const domain = await benchDomain();
      const repo = await localRepository();
      try {
        const configFile = await repo.writeConfig();
        snapshots(domain);
        await resticReads(domain, configFile);
        await consolidation(domain);
        await virtnbdbackup(domain, configFile, repo.passwordFile, repo.repository);
      } finally {
        await repo.stop();
      }
    });
    await group('many', manyDomains);
    await group('fleet', fleet);
    await group('original', originalScript);
    // Slow (2 GiB written through a TCG guest, four times): only when asked for by name.
    if (only.includes('large')) await group('large', largeData);
  } finally {
    await cleanupAll();
    await rm(work, { recursive: true, force: true });
  }
  const table = [
    ['measure', 'ours', 'baseline', 'ratio', 'target', ''],
    ['---', '---', '---', '---', '---', '---'],
    ...rows,
  ];
  process.stdout.write(`${header.join('\n')}\n\n${table.map((r) => `| ${r.join(' | ')} |`).join('\n')}\n`);
}

await main();
