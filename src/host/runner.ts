import { execa } from 'execa';

/** One program run: argv[0] is the program, the rest its arguments. Never a shell. */
export interface RunRequest {
  readonly argv: readonly string[];
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Called with stdout and stderr as they arrive (job progress); both are still returned whole. */
  readonly onOutput?: (chunk: string) => void;
  /** Extra environment (secrets belong here, never in argv, which --debug prints). */
  readonly env?: Readonly<Record<string, string>>;
}

export interface RunResult {
  readonly argv: readonly string[];
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program and resolves with its result whatever the exit code; rejects only when it cannot start. */
export type Runner = (request: RunRequest) => Promise<RunResult>;

/** A program exited non-zero (or was killed) where success was required. */
export class ProcessError extends Error {
  readonly argv: readonly string[];
  readonly exitCode: number;
  readonly stderr: string;
  constructor(result: RunResult, what?: string) {
    const detail = result.stderr.trim() || result.stdout.trim() || `exit code ${result.exitCode}`;
    super(`${what ?? result.argv.slice(0, 2).join(' ')} failed: ${detail}`);
    this.name = 'ProcessError';
    this.argv = result.argv;
    this.exitCode = result.exitCode;
    this.stderr = result.stderr;
  }
}

export const execaRunner: Runner = async ({ argv, input, timeoutMs, onOutput, env }) => {
  const [file, ...args] = argv;
  if (file === undefined) throw new Error('empty argv');
  const subprocess = execa(file, args, {
    reject: false,
    stripFinalNewline: false,
    ...(input === undefined ? { stdin: 'ignore' } : { input }),
    ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }),
    env: { ...env, LC_ALL: 'C' },
  });
  if (onOutput) {
    const forward = (chunk: Buffer) => {
      onOutput(chunk.toString());
    };
    subprocess.stdout.on('data', forward);
    subprocess.stderr.on('data', forward);
  }
  const result = await subprocess;
  if (result.failed && result.exitCode === undefined) {
    if (result.timedOut)
      return { argv, exitCode: 124, stdout: result.stdout, stderr: `timed out after ${timeoutMs} ms` };
    throw new Error(`cannot run ${file}: ${result.originalMessage ?? result.message}`);
  }
  return { argv, exitCode: result.exitCode ?? 1, stdout: result.stdout, stderr: result.stderr };
};

/** Runs and requires exit code 0. */
export async function runChecked(runner: Runner, request: RunRequest, what?: string): Promise<RunResult> {
  const result = await runner(request);
  if (result.exitCode !== 0) throw new ProcessError(result, what);
  return result;
}
