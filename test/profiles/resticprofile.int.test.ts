import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RestoreResult } from '../../src/ops/restore.js';
import type { ConfigObject } from '../../src/profiles/config.js';
import { fromConfig } from '../../src/profiles/config.js';
import type { Profile } from '../../src/profiles/model.js';
import { cliPath, isolatedEnv, runCliOk } from '../cli-run.js';
import type { TestRepository } from '../ops/repositories.js';
import { localRepository } from '../ops/repositories.js';
import type { TestDomain } from '../rig/domain.js';
import { checkImage } from '../rig/image.js';
import { testRoot } from '../rig/rig-paths.js';
import { useTestDomains } from '../rig/test-domains.js';

const domains = useTestDomains();
const env = isolatedEnv();

/** restic flags of a profile section, as resticprofile turns keys into `--key value` arguments. */
const resticKeys = ['files-from-verbatim', 'tag', 'group-by', 'keep-hourly', 'keep-last', 'keep-daily'];

function flags(section: Record<string, unknown>): string[] {
  const args: string[] = [];
  for (const [key, value] of Object.entries(section)) {
    if (!resticKeys.includes(key) && !key.startsWith('keep-')) continue;
    for (const item of Array.isArray(value) ? value : [value]) args.push(`--${key}`, String(item));
  }
  return args;
}

/**
 * One scheduled run of a generated profile the way resticprofile performs it: `initialize`, the
 * run-before hooks through a shell, `restic backup` with the profile's flags, retention
 * (`forget`, after-backup) and the run-after hooks.
 */
async function runProfile(
  profile: Profile,
  parent: Profile,
  shellEnv: Record<string, string>,
): Promise<{ snapshot: string; files: string[] }> {
  const restic = ['-r', String(parent.repository), '--password-file', String(parent['password-file'])];
  const resticEnv = { RESTIC_CACHE_DIR: join(testRoot, 'restic-cache') };
  if (parent.initialize === true) {
    const exists = await execa('restic', [...restic, 'cat', 'config'], { reject: false, env: resticEnv });
    if (exists.exitCode !== 0) await execa('restic', [...restic, 'init'], { env: resticEnv });
  }
  const backup = profile.backup ?? {};
  for (const hook of (backup['run-before'] as string[] | undefined) ?? [])
    await execa('/bin/sh', ['-c', hook], { env: shellEnv });
  const list = (backup['files-from-verbatim'] as string[])[0] ?? '';
  const files = (await readFile(list, 'utf8')).split('\n').filter((line) => line !== '');
  const out = await execa('restic', [...restic, 'backup', '--json', ...flags(backup)], { env: resticEnv });
  const summary = out.stdout
    .split('\n')
    .map((line) => JSON.parse(line) as { message_type?: string; snapshot_id?: string })
    .find((message) => message.message_type === 'summary');
  const retention = profile.retention ?? {};
  expect(retention['after-backup']).toBe(true);
  expect(retention.path).toBe(false);
  await execa('restic', [...restic, 'forget', ...flags(retention), '--tag', String(retention.tag)], {
    env: resticEnv,
  });
  for (const hook of (backup['run-after'] as string[] | undefined) ?? [])
    await execa('/bin/sh', ['-c', hook], { env: shellEnv });
  return { snapshot: summary?.snapshot_id ?? '', files };
}

describe('a generated resticprofile profile, run as resticprofile runs it', () => {
  let repo: TestRepository;
  let domain: TestDomain;
  let bin: string;

  beforeAll(async () => {
    // The hooks call `unifi-backup` from PATH, as on a host where it is installed.
    bin = await mkdtemp(join(testRoot, 'ub-bin-'));
    await writeFile(join(bin, 'unifi-backup'), `#!/bin/sh\nexec node ${cliPath} "$@"\n`);
    await chmod(join(bin, 'unifi-backup'), 0o755);
    repo = await localRepository();
    domain = await domains.create({ disks: 1, diskSizeMiB: 32 });
  });
  afterAll(async () => {
    await repo.stop();
    await rm(bin, { recursive: true, force: true });
  });

  it('backs up exactly the frozen layers and config dumps, keeps retention per level, and restores clean data', async () => {
    // Offline: nothing about the domain is looked up, only its name is used.
    const generated = await runCliOk(
      [
        'generate',
        '-i',
        'Mon..Fri 8,12,16,20:00',
        '-f',
        'Sat 20:00',
        '--repository',
        repo.repository,
        '--password-file',
        repo.passwordFile,
        '--init',
        '--keep-last',
        '1',
        '--format',
        'json',
        domain.name,
      ],
      env,
    );
    const set = fromConfig(JSON.parse(generated.stdout) as ConfigObject, 'stdout');
    const incr = set.profiles[`${domain.name}-incr`];
    const full = set.profiles[`${domain.name}-full`];
    if (incr === undefined || full === undefined) throw new Error('generate wrote no incr/full profile');
    const shellEnv = { ...env, PATH: `${bin}:${process.env.PATH ?? ''}` };

    const runs: { level: string; seq: number; snapshot: string; files: string[] }[] = [];
    for (const [level, profile] of [
      ['incr', incr],
      ['full', full],
      ['incr', incr],
    ] as const) {
      const seq = await domain.lastSeq('vda');
      const run = await runProfile(profile, incr, shellEnv);
      // restic read exactly what `files` lists now: never an active layer, nothing of other domains.
      const listed = (await runCliOk(['files', domain.name], env)).stdout.trim().split('\n');
      expect(run.files).toEqual(listed);
      const chains = JSON.parse((await runCliOk(['--json', 'chain', domain.name], env)).stdout) as {
        disks: { layers: { path: string; active: boolean }[] }[];
      };
      for (const disk of chains.disks)
        for (const layer of disk.layers.filter((l) => l.active)) expect(run.files).not.toContain(layer.path);
      runs.push({ level, seq, ...run });
      expect(await domain.state()).toBe('running');
      await sleep(1000);
    }

    const snapshots = JSON.parse(
      (
        await execa('restic', [
          '-r',
          repo.repository,
          '--password-file',
          repo.passwordFile,
          'snapshots',
          '--json',
        ])
      ).stdout,
    ) as { short_id: string; tags: string[]; paths: string[] }[];
    // keep-last 1 per level, grouped by tags (every run has other paths): the first incr is
    // forgotten, the full is kept apart from the incr snapshots.
    expect(snapshots.map((s) => s.tags.at(-1))).toEqual(['full', 'incr']);
    const last = runs.at(-1);
    const lastSnapshot = snapshots.find((s) => last?.snapshot.startsWith(s.short_id) === true);
    expect([...(lastSnapshot?.paths ?? [])].sort()).toEqual([...(last?.files ?? [])].sort());

    const to = join(testRoot, `ubt-rp-${Date.now().toString(36)}`);
    try {
      const restored = JSON.parse(
        (
          await runCliOk(
            [
              '--json',
              'restore',
              domain.name,
              '--from',
              `restic:${last?.snapshot ?? ''}`,
              '--to',
              to,
              '--config',
              repo.configFile,
            ],
            env,
          )
        ).stdout,
      ) as RestoreResult;
      for (const disk of restored.disks) {
        const check = await checkImage(disk.chain[0] ?? '');
        expect(check.fsckClean, check.fsckOutput).toBe(true);
        expect(check.records.problems).toEqual([]);
        if (disk.target === 'vda') expect(check.records.lastSeq).toBeGreaterThanOrEqual(last?.seq ?? 1);
      }
    } finally {
      await rm(to, { recursive: true, force: true });
    }
  });
});
