import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { cleanupAll, createTestDomain } from '../test/rig/domain.js';
import type { TestDomain } from '../test/rig/domain.js';
import { checkImage } from '../test/rig/image.js';

/**
 * `npm run demo`: the main job on a throwaway VM. A tiny guest writes checksummed records to two
 * disks while unifi-backup freezes them three times, consolidates the chain, and shows what a
 * backup program would read; then the guest's data is checked and everything is removed.
 */
const cli = path.resolve('dist/unifi-backup.js');
const work = mkdtempSync(path.join(os.tmpdir(), 'unifi-backup-demo-'));
const env = {
  ...process.env,
  UNIFI_BACKUP_LOCK_DIR: path.join(work, 'lock'),
  UNIFI_BACKUP_STATE_DIR: path.join(work, 'state'),
};

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

async function demo(): Promise<void> {
  heading('Starting a throwaway VM (two qcow2 disks, a guest writing fsynced records to both)');
  const domain = await createTestDomain({ name: `unifi-demo-${process.pid}`, disks: 2 });
  process.stdout.write(`domain ${domain.name} is running; its files are in ${domain.dir}\n`);
  await sleep(2000);

  for (let round = 1; round <= 3; round++) {
    heading(
      `Incremental backup ${round} of 3 while the guest writes (records so far: ${await records(domain)})`,
    );
    await unifiBackup('backup', 'incr', domain.name);
    await sleep(2000);
  }
  heading('The chain: every disk runs from a new active layer; the layers below it are frozen');
  await unifiBackup('backup', 'showchain', domain.name);
  heading(
    'What restic (or any backup program) must read: frozen layers and config dumps, never the active layer',
  );
  await unifiBackup('files', domain.name);

  heading('Consolidation: diff pulls the incr layers into one; full commits the chain into the base');
  await unifiBackup('backup', 'diff', domain.name);
  await unifiBackup('backup', 'full', domain.name);
  await unifiBackup('backup', 'showchain', domain.name);

  heading(`Shutting the VM down (records written: ${await records(domain)}) and checking its data`);
  await domain.shutdown();
  let sound = true;
  for (const disk of domain.disks) {
    const check = await checkImage((await topOf(domain.name, disk.target)) ?? disk.path);
    const ok = check.fsckClean && check.records.ok;
    sound &&= ok;
    process.stdout.write(
      `${disk.target}: filesystem ${check.fsckClean ? 'clean' : 'DAMAGED'}, ${check.records.count} records ` +
        `${check.records.ok ? 'intact' : `BROKEN: ${check.records.problems.join('; ')}`}\n`,
    );
  }
  heading(sound ? 'Demo done: the data survived every step.' : 'Demo FAILED: see above.');
  if (!sound) process.exitCode = 1;
}

async function topOf(domain: string, target: string): Promise<string | undefined> {
  const { stdout } = await execa('node', [cli, '--json', 'backup', 'showchain', domain], { env });
  const chain = JSON.parse(stdout) as { disks: { target: string; layers: { path: string }[] }[] };
  return chain.disks.find((d) => d.target === target)?.layers[0]?.path;
}

process.on('SIGINT', () => {
  void cleanupAll().finally(() => process.exit(130));
});
try {
  await demo();
} finally {
  heading('Cleaning up the throwaway VM');
  await cleanupAll();
}
