import { accessSync, constants, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { InternalError, UserError } from '../errors.js';

/** One program run: argv[0] is the program, the rest its arguments. Never a shell. */
export interface ProgramRequest {
  readonly argv: readonly string[];
  readonly input?: string;
  /** A file (a block device) the program reads as its standard input, streamed, never held in memory. */
  readonly inputFile?: string;
  /** A file (a block device) the program's standard output is written to, streamed; `stdout` is then empty. */
  readonly outputFile?: string;
  readonly timeoutMs?: number;
  /** Called with stdout and stderr as they arrive (job progress); both are still returned whole. */
  readonly onOutput?: (chunk: string) => void;
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

export const execaRunner: Runner = async ({
  argv,
  input,
  inputFile,
  outputFile,
  timeoutMs,
  onOutput,
  env,
}) => {
  const [file, ...args] = argv;
  if (file === undefined) throw new InternalError('empty argv');
  // Loaded on first use: execa is a large part of the bundle and `--version`/`--help` never run a program.
  const { execa } = await import('execa');
  const subprocess = execa(file, args, {
    reject: false,
    stripFinalNewline: false,
    ...(input !== undefined ? { input } : inputFile !== undefined ? { inputFile } : { stdin: 'ignore' }),
    ...(outputFile === undefined ? {} : { stdout: { file: outputFile } }),
    ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }),
    env: { ...env, LC_ALL: 'C' },
  });
  if (onOutput) {
    const forward = (chunk: Buffer) => {
      onOutput(chunk.toString());
    };
    // Null when stdout goes to outputFile (execa's types do not follow the option).
    (subprocess.stdout as Readable | null)?.on('data', forward);
    subprocess.stderr.on('data', forward);
  }
  const result = await subprocess;
  if (result.failed && result.exitCode === undefined) {
    if (result.timedOut && timeoutMs !== undefined) throw new ProgramTimeoutError(argv, timeoutMs);
    if (result.signal !== undefined) throw new ProgramKilledError(argv, result.signal);
    if (result.code === 'ENOENT') throw new MissingProgramError(file, { cause: result });
    throw new UserError(
      `cannot run ${file}: ${result.originalMessage ?? result.message}. Check that it is installed and executable, then run again.`,
      { cause: result },
    );
  }
  // Undefined when stdout went to outputFile.
  const stdout: unknown = result.stdout;
  return {
    argv,
    exitCode: result.exitCode ?? 1,
    stdout: typeof stdout === 'string' ? stdout : '',
    stderr: result.stderr,
  };
};

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
