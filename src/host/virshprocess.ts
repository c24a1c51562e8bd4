import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';

// Imports nothing but node's own modules: bin.ts loads this before the rest of the tool.

/** Longer lines (readline would wrap their echo) are run on their own. */
export const maxLine = 1_000_000;

/** virsh and its options for the interactive shell on `uri`. */
export function virshShellArgv(uri: string): readonly string[] {
  return ['virsh', '--quiet', '--connect', uri];
}

/** Starts virsh's interactive shell (`argv` from virshShellArgv); it never keeps the tool running. */
export function spawnVirshShell(argv: readonly string[]): ChildProcessWithoutNullStreams {
  const [file = 'virsh', ...args] = argv;
  const child = spawn(file, args, {
    // readline echoes each line read: unwrapped (a wide "terminal"), no user settings, UTF-8 as
    // it is (C.UTF-8: libvirt's messages stay untranslated, as in a run with LC_ALL=C).
    env: {
      ...process.env,
      LC_ALL: 'C.UTF-8',
      TERM: 'dumb',
      COLUMNS: String(maxLine + 1000),
      INPUTRC: '/dev/null',
    },
  });
  // Never what keeps the tool running: a pending question has its timer for that.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr])
    (stream as unknown as { unref?: () => void }).unref?.();
  return child;
}

/** A shell started at start-up, until the first VirshShell takes it. */
let early:
  | { readonly argv: readonly string[]; readonly child: ChildProcessWithoutNullStreams; gone: boolean }
  | undefined;

const stopEarly = () => {
  early?.child.kill('SIGKILL');
};

/**
 * Starts the shell before the tool's modules load, so that virsh's start and its connection to
 * libvirt overlap with theirs. It never keeps the tool running, and is killed when the tool exits
 * without having used it.
 */
export function startVirshShellEarly(argv: readonly string[]): void {
  const child = spawnVirshShell(argv);
  const started = { argv, child, gone: false };
  const gone = () => {
    started.gone = true;
  };
  child.on('error', gone).on('exit', gone);
  child.stdin.on('error', gone);
  process.once('exit', stopEarly);
  early = started;
}

/**
 * The shell started early, handed over once when it was started for the same `argv` and still
 * runs; otherwise it is ended and the caller starts its own.
 */
export function adoptVirshShell(argv: readonly string[]): ChildProcessWithoutNullStreams | undefined {
  const started = early;
  early = undefined;
  process.removeListener('exit', stopEarly);
  if (started === undefined) return undefined;
  const same = started.argv.length === argv.length && started.argv.every((arg, i) => arg === argv[i]);
  if (same && !started.gone) return started.child;
  started.child.kill('SIGKILL');
  return undefined;
}
