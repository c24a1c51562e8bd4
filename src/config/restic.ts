import os from 'node:os';
import { UsageError } from '../errors.js';
import type { ResticSettings, RetentionRules } from '../host/restic.js';
import type { Config } from './config.js';

/**
 * The repository settings: the config file's `restic:` section first, then restic's own
 * environment (RESTIC_REPOSITORY, RESTIC_PASSWORD, RESTIC_PASSWORD_FILE, …), which restic reads itself.
 */
export function resticSettings(config: Config, file: string, env: NodeJS.ProcessEnv): ResticSettings {
  const section = config.restic ?? {};
  const repository = section.repository ?? env.RESTIC_REPOSITORY;
  if (repository === undefined || repository === '')
    throw new UsageError(
      `no restic repository: set restic.repository in ${file}, or RESTIC_REPOSITORY in the environment.`,
    );
  const hasPassword =
    section['password-file'] !== undefined ||
    section['password-command'] !== undefined ||
    ['RESTIC_PASSWORD', 'RESTIC_PASSWORD_FILE', 'RESTIC_PASSWORD_COMMAND'].some((n) => (env[n] ?? '') !== '');
  if (!hasPassword)
    throw new UsageError(
      `no password for the restic repository: set restic.password-file in ${file}, or RESTIC_PASSWORD_FILE ` +
        '(or RESTIC_PASSWORD) in the environment.',
    );
  return {
    repository,
    ...(section['password-file'] === undefined ? {} : { passwordFile: section['password-file'] }),
    ...(section['password-command'] === undefined ? {} : { passwordCommand: section['password-command'] }),
    ...(section['cache-dir'] === undefined ? {} : { cacheDir: section['cache-dir'] }),
    ...(section['lock-wait'] === undefined ? {} : { lockWaitSeconds: section['lock-wait'] }),
    host: section.host ?? os.hostname(),
    options: section.options ?? [],
    env: section.env ?? {},
  };
}

/** The keep rules of the `retention:` section; undefined when there are none (nothing is forgotten). */
export function retentionRules(config: Config): RetentionRules | undefined {
  const r = config.retention ?? {};
  const rules: RetentionRules = {
    ...(r['keep-last'] === undefined ? {} : { keepLast: r['keep-last'] }),
    ...(r['keep-hourly'] === undefined ? {} : { keepHourly: r['keep-hourly'] }),
    ...(r['keep-daily'] === undefined ? {} : { keepDaily: r['keep-daily'] }),
    ...(r['keep-weekly'] === undefined ? {} : { keepWeekly: r['keep-weekly'] }),
    ...(r['keep-monthly'] === undefined ? {} : { keepMonthly: r['keep-monthly'] }),
    ...(r['keep-yearly'] === undefined ? {} : { keepYearly: r['keep-yearly'] }),
    ...(r['keep-within'] === undefined ? {} : { keepWithin: r['keep-within'] }),
  };
  return Object.keys(rules).length === 0 ? undefined : rules;
}
