import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ProgramTimeoutError } from './runner.js';
import { adoptVirshShell, maxLine, spawnVirshShell } from './virshprocess.js';

/** What virsh's interactive shell (readline) prints before it reads each line. */
const prompt = 'virsh # ';

/** A word virsh's command language reads as itself without quotes. */
const plainWord = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * The line of virsh's command language that virsh splits into exactly `args`; undefined when an
 * argument holds a control character (a newline would end the line, readline acts on a tab), so
 * the command is run on its own. Inside single quotes everything is literal (`;`, `#`, `"`, `\`,
 * spaces, any UTF-8); a single quote itself closes the quotes, is escaped and reopens them.
 */
export function commandLine(args: readonly string[]): string | undefined {
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (args.some((arg) => /[\u0000-\u001f\u007f]/.test(arg))) return undefined;
  return args.map((arg) => (plainWord.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`)).join(' ');
}

/**
 * One output stream of the shell. A mark is searched for only in text that arrived since the last
 * search (and the few characters before it), so a large answer costs one pass, not one per chunk.
 */
class Output {
  private parts: string[] = [];
  /** How many of `parts` were searched already. */
  private searched = 0;
  /** The end of the searched text, where a mark may have begun. */
  private edge = '';

  push(chunk: string): void {
    this.parts.push(chunk);
  }

  /** The text before `mark`, taken out with the mark; undefined until the mark has arrived. */
  take(mark: string): string | undefined {
    const window = this.edge + this.parts.slice(this.searched).join('');
    const at = window.indexOf(mark);
    if (at < 0) {
      this.searched = this.parts.length;
      this.edge = window.slice(-(mark.length - 1));
      return undefined;
    }
    const all = this.parts.join('');
    const end = all.length - window.length + at;
    this.parts = [all.slice(end + mark.length)];
    this.searched = 0;
    this.edge = '';
    return all.slice(0, end);
  }
}

/**
 * One `virsh` process, and so one libvirt connection, for every read-only question of an
 * invocation: its interactive shell is fed one line per question. Each line is followed by
 * `echo MARK` and `echo --err MARK` with a random MARK, which end its output on both streams.
 * A question is answered only when it printed nothing on stderr: anything else (an error, a
 * warning, a shell that died or printed what was not expected) answers undefined, and the caller
 * asks again with a virsh run of its own, whose result and error are the authoritative ones.
 * A question that outlives its timeout kills the process (the next one starts another).
 */
export class VirshShell {
  private child: ChildProcessWithoutNullStreams | undefined;
  /** Set when the shell cannot be used any more this invocation (missing, died, unexpected output). */
  private broken = false;
  private stdout = new Output();
  private stderr = new Output();
  private wake: (() => void) | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly stopAtExit = () => {
    this.child?.kill('SIGKILL');
  };

  /**
   * @param argv virsh and its connection options (`virsh --quiet --connect URI`)
   * @param log told each line sent, for --debug
   */
  constructor(
    private readonly argv: readonly string[],
    private readonly log?: (line: string) => void,
  ) {}

  /** The output of one line, as a virsh run of its own prints it; undefined when the shell cannot say. */
  ask(line: string, timeoutMs: number): Promise<string | undefined> {
    const answer = this.queue.then(() => this.exchange(line, timeoutMs));
    this.queue = answer.catch(() => undefined);
    return answer;
  }

  private start(): ChildProcessWithoutNullStreams | undefined {
    if (this.broken) return undefined;
    if (this.child !== undefined) return this.child;
    const child = adoptVirshShell(this.argv) ?? spawnVirshShell(this.argv);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout.push(chunk);
      this.wake?.();
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr.push(chunk);
      this.wake?.();
    });
    const gone = () => {
      if (this.child === child) this.stop(true);
      this.wake?.();
    };
    child.on('error', gone).on('exit', gone);
    child.stdin.on('error', gone);
    process.once('exit', this.stopAtExit);
    this.child = child;
    return child;
  }

  /** Ends the process; `broken` keeps the shell from being used again. */
  private stop(broken: boolean): void {
    process.removeListener('exit', this.stopAtExit);
    this.child?.kill('SIGKILL');
    this.child = undefined;
    this.stdout = new Output();
    this.stderr = new Output();
    if (broken) this.broken = true;
  }

  private async exchange(line: string, timeoutMs: number): Promise<string | undefined> {
    const child = line.length > maxLine ? undefined : this.start();
    if (child === undefined) return undefined;
    const marker = `@@unifi-backup-${randomBytes(8).toString('hex')}`;
    const head = `${prompt}${line}\n`;
    const tail = `${prompt}echo ${marker}\n${marker}${prompt}echo --err ${marker}\n`;
    const errTail = `error: ${marker}\n`;
    this.log?.(`+ virsh> ${line}`);
    child.stdin.write(`${line}\necho ${marker}\necho --err ${marker}\n`);
    let out: string | undefined;
    let err: string | undefined;
    const answered = await this.until(() => {
      if (this.child !== child) return true;
      out ??= this.stdout.take(tail);
      err ??= this.stderr.take(errTail);
      return out !== undefined && err !== undefined;
    }, timeoutMs);
    if (this.child !== child) return undefined;
    if (!answered || out === undefined) {
      this.stop(false);
      throw new ProgramTimeoutError([...this.argv, line], timeoutMs);
    }
    if (!out.startsWith(head)) {
      this.stop(true);
      return undefined;
    }
    if (err !== '') return undefined;
    return out.slice(head.length);
  }

  /** Resolves true once `done()` holds, false when `timeoutMs` passed first. */
  private until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve(false);
      }, timeoutMs);
      this.wake = () => {
        if (!done()) return;
        clearTimeout(timer);
        this.wake = undefined;
        resolve(true);
      };
      this.wake();
    });
  }
}
