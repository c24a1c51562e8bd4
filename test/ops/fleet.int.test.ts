import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainStatus } from '../../src/ops/status.js';
import { isolatedEnv, runCli, runCliOk } from '../cli-run.js';
import type { TestDomain } from '../rig/domain.js';
import { testRoot } from '../rig/rig-paths.js';
import { useTestDomains } from '../rig/test-domains.js';
import { expectDataIntact, chainOf } from './chain-json.js';
import type { TestRepository } from './repositories.js';
import { freePort, restRepository } from './repositories.js';
import { bootAndCheckRestored } from './restored.js';

const domains = useTestDomains();
const suffix = randomBytes(3).toString('hex');

interface Snapshot {
  short_id: string;
  hostname: string;
  tags: string[];
}

/** Two hosts: own state and lock folders, own restic.host, one REST repository. */
interface FleetHost {
  readonly name: string;
  readonly env: Record<string, string>;
  readonly config: string;
}

describe('a fleet: two hosts, one repository, status and metrics', () => {
  let repo: TestRepository;
  let a: FleetHost;
  let b: FleetHost;
  let a1: TestDomain;
  let odd: TestDomain;
  let b1: TestDomain;
  let b2: TestDomain;
  let exporter: ChildProcess | undefined;

  const snapshots = async (): Promise<Snapshot[]> => {
    const result = await execa('restic', ['snapshots', '--json'], {
      env: { RESTIC_REPOSITORY: repo.repository, RESTIC_PASSWORD_FILE: repo.passwordFile },
    });
    return JSON.parse(result.stdout) as Snapshot[];
  };
  const ids = (list: Snapshot[], host: string, domain: string) =>
    list.filter((s) => s.hostname === host && s.tags.includes(domain)).map((s) => s.short_id);
  const run = (host: FleetHost, domain: TestDomain, ...extra: string[]) =>
    runCliOk(['run', 'incr', domain.name, '--config', host.config, ...extra], host.env);

  beforeAll(async () => {
    repo = await restRepository();
    const host = async (name: string): Promise<FleetHost> => ({
      name,
      env: isolatedEnv(),
      config: await repo.writeConfig(
        { retention: { 'keep-last': 1 }, status: { 'stale-after': '1h' } },
        { host: name, 'lock-wait': 120 },
      ),
    });
    a = await host(`host-a-${suffix}`);
    b = await host(`host-b-${suffix}`);
    [a1, odd, b1, b2] = await Promise.all([
      // Shut off: the fleet's concern is the repository, and only the restores need to boot.
      domains.create({ start: false, writer: false }),
      // Label values must survive quotes and backslashes; the comma makes every run of it fail.
      domains.create({ name: `ubt-q"\\,${suffix}`, dirName: `ubt-q-${suffix}`, start: false, writer: false }),
      domains.create({ start: false, writer: false }),
      domains.create({ start: false, writer: false }),
    ]);
    await run(b, b2, '--init');
  });
  afterAll(async () => {
    exporter?.kill('SIGTERM');
    await repo.stop();
  });

  it('both hosts back up at once; retention touches only its own host; restic check is clean', async () => {
    for (let round = 0; round < 2; round++) await Promise.all([run(a, a1), run(b, b1), run(b, b2)]);
    // host-a backs up host-b's domain b2 as well: the same domain tag under two host names.
    await run(a, b2);
    const before = await snapshots();
    for (const [host, domain] of [
      [a, a1],
      [b, b1],
      [b, b2],
      [a, b2],
    ] as const)
      expect(ids(before, host.name, domain.name), `${host.name} ${domain.name}`).toHaveLength(1);

    await run(b, b2);
    const after = await snapshots();
    expect(ids(after, a.name, b2.name)).toEqual(ids(before, a.name, b2.name));
    expect(ids(after, b.name, b2.name)).toHaveLength(1);
    expect(ids(after, b.name, b2.name)).not.toEqual(ids(before, b.name, b2.name));
    expect(ids(after, a.name, a1.name)).toEqual(ids(before, a.name, a1.name));
    await execa('restic', ['check'], {
      env: { RESTIC_REPOSITORY: repo.repository, RESTIC_PASSWORD_FILE: repo.passwordFile },
    });
  });

  it('status tells ok, failing and another host’s snapshots; status of several exits 1 when one is not ok', async () => {
    const failed = await runCli(['run', 'incr', odd.name, '--config', a.config], a.env);
    expect(failed.exitCode).toBe(1);

    const result = await runCli(
      ['--json', 'status', a1.name, odd.name, '--restic', '--config', a.config],
      a.env,
    );
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`1 of 2 domains are not ok: ${odd.name} (failing)`);
    const [one, two] = (JSON.parse(result.stdout) as { result: DomainStatus }[]).map((o) => o.result);
    expect(one?.verdict).toBe('ok');
    expect(one?.runs.lastSuccess.incr?.snapshot).toMatch(/^[0-9a-f]{8,64}$/);
    expect(one?.restic?.host).toBe(a.name);
    expect(one?.restic?.newest?.time).toBeDefined();
    expect(two?.verdict).toBe('failing');
    expect(two?.reasons[0]).toMatch(
      /^the last backup failed \(run incr at .*: domain '.*': its name holds a comma/,
    );

    const other = JSON.parse(
      (
        await runCliOk(
          ['--json', 'status', b1.name, '--restic', '--host', b.name, '--config', a.config],
          a.env,
        )
      ).stdout,
    ) as DomainStatus;
    // host-a has no run records of b1, but its chain's newest layer and host-b's snapshot are fresh.
    expect(other.restic?.newest?.id).toBe(ids(await snapshots(), b.name, b1.name)[0]);
    expect(other.runs.lastSuccess).toEqual({});
    expect(other.verdict).toBe('ok');
  });

  it('metrics pass promtool and are served by a real node_exporter textfile collector', async () => {
    const dir = await mkdtemp(join(testRoot, 'textfile-'));
    const file = join(dir, 'unifi-backup.prom');
    const written = await runCli(
      ['metrics', a1.name, odd.name, '--output', file, '--config', a.config],
      a.env,
    );
    expect(written.exitCode, written.stderr).toBe(0);
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    const text = await readFile(file, 'utf8');
    const promtool = await execa('promtool', ['check', 'metrics'], { input: text, reject: false });
    expect(promtool.exitCode, `${promtool.stdout}${promtool.stderr}`).toBe(0);

    const port = await freePort();
    exporter = spawn(
      'prometheus-node-exporter',
      [
        `--web.listen-address=127.0.0.1:${port}`,
        '--collector.disable-defaults',
        '--collector.textfile',
        `--collector.textfile.directory=${dir}`,
      ],
      { stdio: 'ignore' },
    );
    let scraped = '';
    for (let i = 0; i < 100 && !scraped.includes('unifi_backup_info'); i++) {
      scraped = await fetch(`http://127.0.0.1:${port}/metrics`)
        .then((r) => r.text())
        .catch(() => '');
      if (!scraped.includes('unifi_backup_info')) await sleep(100);
    }
    const q = `ubt-q\\"\\\\,${suffix}`;
    expect(scraped).toContain(`unifi_backup_verdict{domain="${q}",verdict="failing"} 1`);
    expect(scraped).toContain(`unifi_backup_last_run_success{domain="${q}",verb="run"} 0`);
    expect(scraped).toContain(`unifi_backup_verdict{domain="${a1.name}",verdict="ok"} 1`);
    expect(scraped).toMatch(
      new RegExp(`unifi_backup_chain_length\\{disk="vda",domain="${a1.name}"\\} [2-9]`),
    );
    expect(scraped).toContain('node_textfile_scrape_error 0');
    await rm(dir, { recursive: true, force: true });
  });

  it('a restore of each host’s latest snapshot boots with intact data', async () => {
    const chain = await chainOf(a1.name, a.env);
    await expectDataIntact(chain.disks[0]?.layers[0]?.path ?? '', 0);
    await bootAndCheckRestored({ domain: a1.name, from: 'restic', config: a.config, env: a.env }, [
      { target: 'vda', seqAtLeast: 0 },
    ]);
    await bootAndCheckRestored({ domain: b1.name, from: 'restic', config: b.config, env: b.env }, [
      { target: 'vda', seqAtLeast: 0 },
    ]);
  });
});
