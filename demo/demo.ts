import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { cleanupAll, createTestDomain, TestDomain } from '../test/rig/domain.js';
import { checkImage } from '../test/rig/image.js';
import { testRoot } from '../test/rig/rig-paths.js';

/**
 * `npm run demo`: the main job on a throwaway VM. A tiny guest writes checksummed records to two
 * disks while unifi-backup backs it up into a local restic repository (incr ×3, diff, full), shows
 * the chain and what restic read; then a snapshot is restored as a new domain and booted, and the
 * data of both is checked. Everything is removed at the end.
 */
const cli = path.resolve('dist/unifi-backup.js');
const work = mkdtempSync(path.join(os.tmpdir(), 'unifi-backup-demo-'));
const passwordFile = path.join(work, 'restic-password');
writeFileSync(passwordFile, 'demo-password\n', { mode: 0o600 });
const repository = path.join(work, 'repository');
const config = path.join(work, 'config.yaml');
writeFileSync(
  config,
  `restic:\n  repository: ${repository}\n  password-file: ${passwordFile}\nretention:\n  keep-last: 10\n`,
  { mode: 0o600 },
);
const env = {
  ...process.env,
  UNIFI_BACKUP_LOCK_DIR: path.join(work, 'lock'),
  UNIFI_BACKUP_STATE_DIR: path.join(work, 'state'),
  UNIFI_BACKUP_CONFIG: config,
};
const cleanups: (() => Promise<void>)[] = [];

const bold = process.stdout.isTTY && process.env.NO_COLOR === undefined;

function heading(text: string): void {
  process.stdout.write(bold ? `\n\x1b[1m== ${text}\x1b[0m\n` : `\n== ${text}\n`);
}

async function unifiBackup(...args: string[]): Promise<void> {
  process.stdout.write(
    `$ unifi-backup ${args.map((a) => (/^[\w./-]+$/.test(a) ? a : `'${a}'`)).join(' ')}\n`,
  );
  await execa('node', [cli, ...args], { env, stdio: 'inherit' });
}

async function records(domain: TestDomain): Promise<string> {
  return (
    await Promise.all(domain.disks.map(async (d) => `${d.target}: ${await domain.lastSeq(d.target)}`))
  ).join(', ');
}

async function checkData(domain: TestDomain): Promise<boolean> {
  let sound = true;
  for (const disk of domain.disks) {
    const check = await checkImage((await topOf(domain.name, disk.target)) ?? disk.path);
    sound &&= check.fsckClean && check.records.ok;
    process.stdout.write(
      `${domain.name} ${disk.target}: filesystem ${check.fsckClean ? 'clean' : 'DAMAGED'}, ${check.records.count} records ` +
        `${check.records.ok ? 'intact' : `BROKEN: ${check.records.problems.join('; ')}`}\n`,
    );
  }
  return sound;
}

async function demo(): Promise<void> {
  heading('Starting a throwaway VM (two qcow2 disks, a guest writing fsynced records to both)');
  const domain = await createTestDomain({ name: `unifi-demo-${process.pid}`, disks: 2 });
  process.stdout.write(`domain ${domain.name} is running; its files are in ${domain.dir}\n`);
  process.stdout.write(`restic repository: ${repository} (settings in ${config})\n`);
  await sleep(2000);

  for (let round = 1; round <= 3; round++) {
    heading(
      `Incremental backup ${round} of 3 into restic while the guest writes (records so far: ${await records(domain)})`,
    );
    await unifiBackup('run', 'incr', domain.name, ...(round === 1 ? ['--init'] : []));
    await sleep(2000);
  }
  heading('The chain: every disk runs from a new active layer; the layers below it are frozen');
  await unifiBackup('backup', 'showchain', domain.name);
  heading('What restic read: frozen layers and config dumps, never the active layer');
  await unifiBackup('files', domain.name);

  heading('Consolidation: diff pulls the incr layers into one; full commits the chain into the base');
  await unifiBackup('run', 'diff', domain.name);
  await sleep(2000);
  await unifiBackup('run', 'full', domain.name);
  await unifiBackup('backup', 'showchain', domain.name);
  await unifiBackup('verify', '--restic', domain.name);

  heading('Restoring the latest restic snapshot as a new domain beside the original, and booting it');
  const copy = `${domain.name}-restored`;
  const copyDir = path.join(testRoot, copy);
  const restored = new TestDomain(copy, copyDir, domain.disks, undefined, path.join(copyDir, 'console.log'));
  cleanups.push(() => restored.cleanup());
  await unifiBackup('restore', domain.name, '--from', 'restic', '--to', copyDir, '--as', copy, '--start');
  await restored.waitForAgent();
  process.stdout.write(
    `${copy} is running; its writers continue from the backed-up records (${await records(restored)})\n`,
  );
  await sleep(2000);

  heading(`Shutting both VMs down (records written: ${await records(domain)}) and checking their data`);
  await Promise.all([domain.shutdown(), restored.shutdown()]);
  const sound = (await checkData(domain)) && (await checkData(restored));
  heading(
    sound
      ? 'Demo done: the data survived every step, and the restored copy boots.'
      : 'Demo FAILED: see above.',
  );
  if (!sound) process.exitCode = 1;
}

async function topOf(domain: string, target: string): Promise<string | undefined> {
  const { stdout } = await execa('node', [cli, '--json', 'backup', 'showchain', domain], { env });
  const chain = JSON.parse(stdout) as { disks: { target: string; layers: { path: string }[] }[] };
  return chain.disks.find((d) => d.target === target)?.layers[0]?.path;
}

async function cleanUp(): Promise<void> {
  for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  await cleanupAll();
}

process.on('SIGINT', () => {
  void cleanUp().finally(() => process.exit(130));
});
try {
  await demo();
} finally {
  heading('Cleaning up the throwaway VMs and the repository');
  await cleanUp();
}
