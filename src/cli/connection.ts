import { isSeedInvocation } from './seed.js';

/** The libvirt URI when neither --connect nor the config file names one. */
export function defaultConnection(env: NodeJS.ProcessEnv): string {
  return env.LIBVIRT_DEFAULT_URI ?? 'qemu:///system';
}

/** Verbs that ask libvirt about domains as soon as they start (all of the original script's actions are). */
const libvirtVerbs = new Set([
  'backup',
  'chain',
  'files',
  'maintenance',
  'sync',
  'run',
  'repair',
  'status',
  'verify',
]);

/** Options of the program that take a value, so the word after them is not the verb. */
const valueOptions = new Set([
  '-c',
  '--connect',
  '--lock-dir',
  '--state-dir',
  '-j',
  '--jobs',
  '--log-format',
]);

/** What `argv` asks for, read before the CLI's parser has loaded. */
export interface Invocation {
  /** The verb; `help` for help and version, `seed` for the original script's form. */
  readonly verb?: string;
  /** The libvirt URI named by --connect, or the default. */
  readonly uri: string;
}

/** The verb and the libvirt URI of `argv`, by the program's options alone (a guess: see earlyConnection). */
export function guessInvocation(argv: readonly string[], env: NodeJS.ProcessEnv): Invocation {
  const asksForHelp = (arg: string) => ['-h', '--help', '-V', '--version'].includes(arg);
  if (isSeedInvocation(argv))
    return { verb: argv.some(asksForHelp) ? 'help' : 'seed', uri: defaultConnection(env) };
  let uri = defaultConnection(env);
  let verb: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') break;
    if (asksForHelp(arg) || (verb === undefined && arg === 'help')) return { verb: 'help', uri };
    if (arg === '-c' || arg === '--connect') uri = argv[i + 1] ?? uri;
    else if (arg.startsWith('--connect=')) uri = arg.slice('--connect='.length);
    else if (arg.startsWith('-c') && !arg.startsWith('--')) uri = arg.slice(2);
    else if (verb === undefined && !arg.startsWith('-')) verb = arg;
    if (valueOptions.has(arg)) i++;
  }
  return verb === undefined ? { uri } : { verb, uri };
}

/**
 * The libvirt URI that `argv` will connect to, read before the CLI's parser has loaded, so its
 * virsh shell can start early; undefined for a verb that does not talk to libvirt first, and for
 * help and version. A wrong guess costs a virsh process, never a wrong connection: the shell is used
 * only by a question for the same URI (the config file may name another).
 */
export function earlyConnection(argv: readonly string[], env: NodeJS.ProcessEnv): string | undefined {
  const { verb, uri } = guessInvocation(argv, env);
  return verb !== undefined && (verb === 'seed' || libvirtVerbs.has(verb)) ? uri : undefined;
}
