import { Option } from 'commander';
import type { Config } from '../config/config.js';
import type { Restic, ResticSettings } from '../host/restic.js';
import type { Runner } from '../host/runner.js';
import { log } from './log.js';
import { loadConfigOnce } from './settings.js';

export function configOption(): Option {
  return new Option('--config <file>', 'config file (default /etc/unifi-backup/config.yaml, optional)').env(
    'UNIFI_BACKUP_CONFIG',
  );
}

export interface Repository {
  readonly config: Config;
  readonly file: string;
  readonly settings: ResticSettings;
  readonly restic: Restic;
}

/** The config file and the restic repository it (or restic's environment) names. */
export async function repository(configFile: string | undefined, runner: Runner): Promise<Repository> {
  // Loaded here, not at start-up: the config schema needs zod and the YAML parser.
  const [{ resticSettings }, { Restic }] = await Promise.all([
    import('../config/restic.js'),
    import('../host/restic.js'),
  ]);
  const { file, config } = await loadConfigOnce(configFile);
  const settings = resticSettings(config, file, process.env);
  const waiting = {
    log: (line: string) => {
      log.info(line);
    },
  };
  return { config, file, settings, restic: new Restic(runner, settings, process.env, waiting) };
}
