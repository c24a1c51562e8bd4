import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { programRunner, runChecked } from '../../src/host/runner.js';
import { testRoot } from '../rig/rig-paths.js';

/** A restic repository for a test: its config.yaml, and a server to stop when it has one. */
export interface TestRepository {
  readonly kind: 'local' | 'sftp' | 'rest';
  readonly repository: string;
  readonly dir: string;
  /** config.yaml naming the repository and a password file. */
  readonly configFile: string;
  readonly passwordFile: string;
  readonly options: readonly string[];
  writeConfig(extra?: Record<string, unknown>, restic?: Record<string, unknown>): Promise<string>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.on('error', () => {
        resolve(false);
      });
    });
    if (open) return;
    await sleep(100);
  }
  throw new Error(`${what} does not listen on 127.0.0.1:${port}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function makeRepository(
  kind: TestRepository['kind'],
  dir: string,
  repository: string,
  options: readonly string[],
  stop: () => Promise<void>,
): Promise<TestRepository> {
  const passwordFile = join(dir, 'password');
  await writeFile(passwordFile, 'correct horse battery staple\n', { mode: 0o600 });
  const configFile = join(dir, 'config.yaml');
  const writeConfig = async (extra: Record<string, unknown> = {}, restic: Record<string, unknown> = {}) => {
    const file = join(dir, `config-${Math.random().toString(16).slice(2, 8)}.yaml`);
    await writeFile(
      file,
      stringify({
        restic: {
          repository,
          'password-file': passwordFile,
          'cache-dir': join(dir, 'cache'),
          ...(options.length > 0 ? { options } : {}),
          ...restic,
        },
        ...extra,
      }),
    );
    return file;
  };
  const repo = { kind, repository, dir, configFile, passwordFile, options, writeConfig, stop };
  await writeFile(configFile, await readFile(await writeConfig(), 'utf8'));
  return repo;
}

async function scratch(kind: string): Promise<string> {
  await mkdir(testRoot, { recursive: true });
  return mkdtemp(join(testRoot, `restic-${kind}-`));
}

export async function localRepository(): Promise<TestRepository> {
  const dir = await scratch('local');
  return makeRepository('local', dir, join(dir, 'repo'), [], () => rm(dir, { recursive: true, force: true }));
}

/** sftp to an sshd of our own on loopback, with a throwaway host key and user key. */
export async function sftpRepository(): Promise<TestRepository> {
  const dir = await scratch('sftp');
  await mkdir('/run/sshd', { recursive: true });
  for (const key of ['host_key', 'user_key'])
    await runChecked(programRunner, {
      argv: ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', join(dir, key)],
    });
  await writeFile(join(dir, 'authorized_keys'), await readFile(join(dir, 'user_key.pub')));
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  await writeFile(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  const sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  await waitForPort(port, sshd, 'sshd');
  const command =
    `ssh -p ${port} -i ${join(dir, 'user_key')} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null ` +
    '-o BatchMode=yes -o LogLevel=ERROR root@127.0.0.1 -s sftp';
  return makeRepository(
    'sftp',
    dir,
    `sftp:root@127.0.0.1:${join(dir, 'repo')}`,
    [`sftp.command=${command}`],
    async () => {
      await stopChild(sshd);
      await rm(dir, { recursive: true, force: true });
    },
  );
}

export const restUser = 'backup';
export const restPassword = 'rest-secret-4711';

/** restic's REST protocol from `rclone serve restic` on loopback, behind a user and password. */
export async function restRepository(): Promise<TestRepository> {
  const dir = await scratch('rest');
  const port = await freePort();
  const rclone = spawn(
    'rclone',
    [
      'serve',
      'restic',
      '--addr',
      `127.0.0.1:${port}`,
      '--user',
      restUser,
      '--pass',
      restPassword,
      join(dir, 'repo'),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RCLONE_CONFIG: join(dir, 'rclone.conf') } },
  );
  await waitForPort(port, rclone, 'rclone serve restic');
  return makeRepository(
    'rest',
    dir,
    `rest:http://${restUser}:${restPassword}@127.0.0.1:${port}/`,
    [],
    async () => {
      await stopChild(rclone);
      await rm(dir, { recursive: true, force: true });
    },
  );
}
