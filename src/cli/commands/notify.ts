import { hostname } from 'node:os';
import { Command, Option } from 'commander';
import { UsageError, UserError } from '../../errors.js';
import { defaultNotifyFile } from '../../config/location.js';
import type { SendResult } from '../../notify/send.js';
import { configOf } from '../settings.js';
import { collect, wholeNumber } from '../options.js';

/** Where the command reads and writes; tests pass their own. */
export interface NotifyCommandIo {
  readonly stdout: { write(text: string): unknown };
  /** where logger:// writes; default standard error */
  readonly stderr?: { write(text: string): unknown };
  readonly stdin: AsyncIterable<Buffer | string>;
  readonly env: NodeJS.ProcessEnv;
  /** the loopback server that stands in for fixed service origins; tests only (SendOptions.apiBase) */
  readonly apiBase?: string;
}

const defaultIo: NotifyCommandIo = { stdout: process.stdout, stdin: process.stdin, env: process.env };

interface SendFlags {
  config?: string;
  alias: string[];
  url: string[];
  title?: string;
  msg: string;
  json?: boolean;
  timeout: string;
  retries: string;
}

async function readAll(stream: AsyncIterable<Buffer | string>): Promise<string> {
  const chunks: string[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
  return chunks.join('').replace(/\n$/, '');
}

/** Never the current folder: a notify.yaml planted there must not choose where messages go. */
function defaultConfigPath(env: NodeJS.ProcessEnv): string {
  return env['UNIFI_BACKUP_NOTIFY_CONFIG'] ?? defaultNotifyFile;
}

function report(io: NotifyCommandIo, results: readonly SendResult[], json: boolean | undefined): void {
  if (json) {
    io.stdout.write(`${JSON.stringify({ ok: results.every((r) => r.ok), results }, null, 2)}\n`);
  } else {
    for (const r of results) {
      io.stdout.write(
        r.ok
          ? `sent     ${r.alias} (${r.scheme})${r.attempts > 1 ? ` after ${r.attempts} attempts` : ''}\n`
          : `FAILED   ${r.alias} (${r.scheme}): ${r.error ?? 'unknown error'}\n`,
      );
    }
  }
  const failed = results.filter((r) => !r.ok);
  if (failed.length > 0) {
    throw new UserError(
      `${failed.length} of ${results.length} notification${results.length === 1 ? '' : 's'} failed: ${failed
        .map((r) => r.alias)
        .join(', ')}; check the URL with "unifi-backup notify test --alias NAME" and the service's status`,
    );
  }
}

/** The global --json (before the subcommand) and the command's own both count. */
function wantsJson(command: Command): boolean {
  return command.optsWithGlobals<{ json?: boolean }>().json === true;
}

/** A bad --url is a usage error (exit 2) found before anything is sent; the message never shows the URL's secrets. */
async function checkUrls(urls: readonly string[]): Promise<void> {
  const { parseServiceUrl } = await import('../../notify/registry.js');
  const { redactUrl } = await import('../../notify/redact.js');
  for (const url of urls) {
    try {
      parseServiceUrl(url);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      throw new UsageError(`--url ${redactUrl(url)}: ${error.message}; see "unifi-backup notify services"`);
    }
  }
}

async function send(
  io: NotifyCommandIo,
  flags: SendFlags,
  title: string | undefined,
  body: string,
  command: Command,
): Promise<void> {
  const { loadNotifyConfig, resolveAliases } = await import('../../notify/config.js');
  const { sendNotifications } = await import('../../notify/send.js');
  if (flags.alias.length === 0 && flags.url.length === 0) {
    throw new UsageError('give at least one --alias NAME (from notify.yaml) or --url URL');
  }
  await checkUrls(flags.url);
  const timeoutMs = wholeNumber('--timeout', flags.timeout, 1) * 1000;
  const retries = wholeNumber('--retries', flags.retries, 0);
  const config =
    flags.alias.length > 0
      ? await loadNotifyConfig(
          flags.config ?? defaultConfigPath(io.env),
          io.env,
          configOf(command)?.notify?.environment,
        )
      : undefined;
  const targets = [
    ...(config === undefined ? [] : resolveAliases(config, flags.alias)),
    ...flags.url.map((url, i) => ({ alias: flags.url.length === 1 ? 'url' : `url${i + 1}`, url })),
  ];
  const results = await sendNotifications(
    targets,
    { ...(title === undefined ? {} : { title }), body },
    {
      timeoutMs,
      retries,
      extraSecrets: config?.secrets ?? [],
      log: (text) => (io.stderr ?? process.stderr).write(text),
      ...(io.apiBase === undefined ? {} : { apiBase: io.apiBase }),
    },
  );
  report(io, results, flags.json);
}

function sendOptions(command: Command): Command {
  return command
    .option(
      '--config <file>',
      `notify.yaml with the aliases (default: $UNIFI_BACKUP_NOTIFY_CONFIG or ${defaultNotifyFile})`,
    )
    .option('--alias <name>', 'alias from notify.yaml; repeat for several', collect, [])
    .option('--url <url>', 'a service URL instead of an alias; repeat for several', collect, [])
    .option('--json', 'print the results as JSON')
    .addOption(new Option('--timeout <seconds>', 'time limit per attempt').default('10'))
    .addOption(new Option('--retries <n>', 'further attempts after a failure that may pass').default('2'));
}

export function notifyCommand(io: NotifyCommandIo = defaultIo): Command {
  const notify = new Command('notify').description(
    'send notifications through shoutrrr-style service URLs (telegram://, smtp://, ntfy://, …)',
  );

  sendOptions(notify.command('send'))
    .description('send a message to one or more aliases or URLs')
    .option('--title <title>', 'message title (mail subject)')
    .requiredOption('--msg <text>', 'message text; "-" reads it from standard input')
    .action(async (flags: SendFlags & { title?: string }, command: Command) => {
      const body = flags.msg === '-' ? await readAll(io.stdin) : flags.msg;
      if (body.trim() === '') throw new UsageError('--msg: the message is empty');
      await send(io, { ...flags, json: wantsJson(command) }, flags.title, body, command);
    });

  sendOptions(notify.command('test'))
    .description('send a test message to check that an alias or URL works')
    .action(async (flags: SendFlags, command: Command) => {
      await send(
        io,
        { ...flags, json: wantsJson(command) },
        'unifi-backup test notification',
        `This is a test notification from unifi-backup on ${hostname()} at ${new Date().toISOString()}.`,
        command,
      );
    });

  notify
    .command('services')
    .description('list the supported services and their URL shapes')
    .option('--json', 'print as JSON')
    .action(async (_flags: unknown, command: Command) => {
      const { listServices } = await import('../../notify/registry.js');
      const services = listServices();
      if (wantsJson(command)) {
        io.stdout.write(`${JSON.stringify(services, null, 2)}\n`);
        return;
      }
      for (const s of services) {
        const also = s.aliases.length > 0 ? ` (also ${s.aliases.map((a) => `${a}://`).join(', ')})` : '';
        io.stdout.write(`${s.scheme}${also}\n  ${s.shape}\n  e.g. ${s.example}\n`);
      }
    });

  return notify;
}
