import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { onExit } from 'signal-exit';
import { InternalError, UserError } from '../errors.js';

/** One program run: argv[0] is the program, the rest its arguments. Never a shell. */
export interface ProgramRequest {
  readonly argv: readonly string[];
  /**
   * The program's standard input. A promise lets the program start (and connect) before its input
   * is known, and its timeout counts from when the promise resolves; when the promise rejects, the
   * program is killed with SIGKILL before its input closes, and the run rejects with that error.
   */
  readonly input?: string | Promise<string>;
  /** A file (a block device) the program reads as its standard input, streamed, never held in memory. */
  readonly inputFile?: string;
  /** A file (a block device) the program's standard output is written to, streamed; `stdout` is then empty. */
  readonly outputFile?: string;
  readonly timeoutMs?: number;
  /** Called with stdout and stderr as they arrive (job progress); both are still returned whole. */
  readonly onOutput?: (chunk: string) => void;
  /** Called with the program's process ID once it has started. */
  readonly onStart?: (pid: number) => void;
  /** Extra environment (secrets belong here, never in argv, which --debug prints). */
  readonly env?: Readonly<Record<string, string>>;
}

export interface ProgramResult {
  readonly argv: readonly string[];
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a program and resolves with its result whatever the exit code. Rejects, with an error naming
 * the program, when it cannot start, is killed by a signal, or outlives its timeout.
 */
export type Runner = (request: ProgramRequest) => Promise<ProgramResult>;

/** The Debian package of each program the tool runs, for the message when one is missing. */
const debianPackages: Readonly<Record<string, string>> = {
  virsh: 'libvirt-clients',
  'qemu-img': 'qemu-utils',
  restic: 'restic',
  flock: 'util-linux',
  'systemd-analyze': 'systemd',
  fallocate: 'util-linux',
};

/** A program exited non-zero, was killed, or timed out where success was required. */
export class ProcessError extends UserError {
  readonly argv: readonly string[];
  /** The program's exit code (the CLI's own is `exitCode`, from UserError). */
  readonly programExitCode: number;
  readonly stderr: string;
  constructor(result: ProgramResult, what?: string, message?: string) {
    const detail = result.stderr.trim() || result.stdout.trim() || `exit code ${result.exitCode}`;
    super(message ?? `${what ?? result.argv.slice(0, 2).join(' ')} failed: ${detail}`);
    this.argv = result.argv;
    this.programExitCode = result.exitCode;
    this.stderr = result.stderr;
  }
}

/** The program is not installed, or not on PATH. */
export class MissingProgramError extends UserError {
  readonly program: string;
  constructor(program: string, options?: ErrorOptions) {
    const pkg = debianPackages[path.basename(program)];
    super(
      `${program} is not installed or not on PATH, so nothing was run. ` +
        (pkg === undefined
          ? `Install it, or add its folder to PATH, then run again.`
          : `Install it (apt-get install ${pkg}), or add its folder to PATH, then run again.`),
      options,
    );
    this.program = program;
  }
}

/**
 * Refuses to start a verb when a program it may need is not on PATH: one that is found missing
 * halfway (a recovery, a consolidation) would leave the work half done.
 */
export function requirePrograms(programs: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  const folders = (env.PATH ?? '').split(':').filter((folder) => folder !== '');
  const onPath = (program: string) =>
    folders.some((folder) => {
      const file = path.join(folder, program);
      try {
        accessSync(file, constants.X_OK);
        return statSync(file).isFile();
      } catch {
        return false;
      }
    });
  const missing = programs.find((program) => !onPath(program));
  if (missing !== undefined) throw new MissingProgramError(missing);
}

/** A signal ended the program before it exited (the OOM killer, an administrator's kill). */
export class ProgramKilledError extends ProcessError {
  readonly signal: NodeJS.Signals;
  constructor(argv: readonly string[], signal: NodeJS.Signals) {
    const program = argv[0] ?? '';
    super(
      { argv, exitCode: 128 + os.constants.signals[signal], stdout: '', stderr: '' },
      undefined,
      `${program} was killed by signal ${signal} while running: ${argv.join(' ')}. ` +
        `Check the system log for who killed it (journalctl -k, dmesg: out of memory?), then run again.`,
    );
    this.signal = signal;
  }
}

/** The program ran longer than its timeout and was stopped. */
export class ProgramTimeoutError extends ProcessError {
  readonly timeoutMs: number;
  constructor(argv: readonly string[], timeoutMs: number, message?: string) {
    const program = argv[0] ?? '';
    super(
      { argv, exitCode: 124, stdout: '', stderr: `timed out after ${timeoutMs} ms` },
      undefined,
      message ??
        `${program} did not finish within ${timeoutMs / 1000} s and was stopped: ${argv.join(' ')}. ` +
          `Check what it waits for, then run again.`,
    );
    this.timeoutMs = timeoutMs;
  }
}

/** A program still running this long after the SIGTERM of its timeout gets SIGKILL. */
const forceKillAfterMs = 5_000;

/** What a program's standard input or output is: a pipe, nothing, or a file opened for it. */
type Stdio = 'pipe' | 'ignore' | number;

/**
 * The runner of the CLI, on node:child_process: standard input from `input` (a pipe), from
 * `inputFile` or nothing; standard output to a pipe or `outputFile`. A file is opened here and
 * handed to the program as its descriptor, so its data never passes through the tool.
 */
export const programRunner: Runner = async (request) => {
  const file = request.argv[0];
  if (file === undefined) throw new InternalError('empty argv');
  const { inputFile, outputFile } = request;
  const withStdout = (stdin: Stdio) =>
    outputFile === undefined
      ? runProgram(request, [stdin, 'pipe', 'pipe'])
      : withFile(file, outputFile, 'w', (stdout) => runProgram(request, [stdin, stdout, 'pipe']));
  return inputFile === undefined
    ? withStdout(request.input === undefined ? 'ignore' : 'pipe')
    : withFile(file, inputFile, 'r', withStdout);
};

/** Opens `name` for `program` while `use` runs; a file that cannot be opened is a UserError naming both. */
async function withFile<T>(
  program: string,
  name: string,
  flags: 'r' | 'w',
  use: (fd: number) => Promise<T>,
): Promise<T> {
  let handle: FileHandle;
  try {
    handle = await open(name, flags);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UserError(
      `cannot run ${program}: its ${flags === 'r' ? 'input' : 'output'} ${name} cannot be opened (${reason}). Check that it exists and is accessible, then run again.`,
      { cause: error },
    );
  }
  try {
    return await use(handle.fd);
  } finally {
    await handle.close();
  }
}

/**
 * Runs one program to its end. A timeout sends SIGTERM, then SIGKILL after `forceKillAfterMs`;
 * when the tool itself exits or is ended by a signal, the program gets SIGTERM (signal-exit), so
 * no qemu-img or virsh outlives the lock of the run that started it.
 */
function runProgram(request: ProgramRequest, stdio: readonly [Stdio, Stdio, 'pipe']): Promise<ProgramResult> {
  const { argv, input, timeoutMs, onOutput, env } = request;
  const [file = '', ...args] = argv;
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      // Most failures to start arrive as an 'error' event; some (ENOTDIR) are thrown here.
      child = spawn(file, args, { stdio: [...stdio], env: { ...process.env, ...env, LC_ALL: 'C' } });
    } catch (error) {
      reject(startFailure(file, error instanceof Error ? error : new Error(String(error))));
      return;
    }
    const output = { stdout: '', stderr: '' };
    for (const name of ['stdout', 'stderr'] as const)
      child[name]?.setEncoding('utf8').on('data', (chunk: string) => {
        output[name] += chunk;
        onOutput?.(chunk);
      });
    if (child.pid !== undefined) request.onStart?.(child.pid);
    const fed = feed(child, input);
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const startTimer = () => {
      if (timeoutMs === undefined || child.exitCode !== null || child.signalCode !== null) return;
      timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), forceKillAfterMs).unref();
      }, timeoutMs);
    };
    // A program waiting for a promised input is timed from when it gets it.
    if (typeof input === 'object') input.then(startTimer, () => undefined);
    else startTimer();
    const stopAtExit = onExit(() => {
      child.kill();
    });
    let failure: Error | undefined;
    child.on('error', (error) => {
      failure ??= error;
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      stopAtExit();
      if (fed.withdrawn !== undefined) reject(fed.withdrawn);
      else if (timedOut && timeoutMs !== undefined) reject(new ProgramTimeoutError(argv, timeoutMs));
      else if (failure !== undefined) reject(startFailure(file, failure));
      else if (signal !== null) reject(new ProgramKilledError(argv, signal));
      else resolve({ argv, exitCode: exitCode ?? 1, ...output });
    });
  });
}

/** Writes `input` to the program; `withdrawn` is set when a promised input was withdrawn instead. */
function feed(child: ChildProcess, input: ProgramRequest['input']): { withdrawn?: Error } {
  const fed: { withdrawn?: Error } = {};
  // A program may exit without reading its input (EPIPE): its exit code tells what happened.
  const stdin = child.stdin?.on('error', () => undefined);
  if (typeof input === 'string') stdin?.end(input);
  else
    input?.then(
      (text) => stdin?.end(text),
      (error: unknown) => {
        fed.withdrawn = error instanceof Error ? error : new Error(String(error));
        // Before its input closes: the program never reads an end of input it could act on.
        child.kill('SIGKILL');
      },
    );
  return fed;
}

/** Why a program could not start, for the user: not installed, or not runnable. */
function startFailure(file: string, error: Error): UserError {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT')
    return new MissingProgramError(file, { cause: error });
  return new UserError(
    `cannot run ${file}: ${error.message}. Check that it is installed and executable, then run again.`,
    { cause: error },
  );
}

/** Runs and requires exit code 0. */
export async function runChecked(
  runner: Runner,
  request: ProgramRequest,
  what?: string,
): Promise<ProgramResult> {
  const result = await runner(request);
  if (result.exitCode !== 0) throw new ProcessError(result, what);
  return result;
}
