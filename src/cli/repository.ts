import { Option } from 'commander';
import type { Config } from '../config/config.js';
import { loadConfig } from '../config/config.js';
import { resticSettings } from '../config/restic.js';
import type { ResticSettings } from '../host/restic.js';
import { Restic } from '../host/restic.js';
import type { Runner } from '../host/runner.js';

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
  const { file, config } = await loadConfig(configFile);
  const settings = resticSettings(config, file, process.env);
  return { config, file, settings, restic: new Restic(runner, settings) };
}
