import { access } from 'node:fs/promises';
import { Command } from 'commander';
import type { Config } from '../../config/config.js';
import { configExample } from '../../config/example.js';
import { log } from '../log.js';
import { printJson } from '../report.js';
import { configOption } from '../repository.js';
import { globalOptions } from '../context.js';

export function configCommand(): Command {
  const config = new Command('config').summary('check the config file, or print a commented example');
  config
    .command('check')
    .summary('validate the config file: every problem at once, as path: message (exit 2 on problems)')
    .addOption(configOption())
    .action(async (options: { config?: string }, command: Command) => {
      const { file, config: loaded, missing } = await loadConfigForCheck(options.config);
      const { configWarnings } = await import('../../config/config.js');
      const warnings = configWarnings(loaded);
      if (globalOptions(command).json) printJson({ file, ok: true, missing, warnings });
      else {
        for (const warning of warnings) log.warn(`${file}: ${warning}`);
        process.stdout.write(
          missing
            ? `${file}: no such file; built-in defaults and restic's environment apply\n`
            : `${file}: ok\n`,
        );
      }
    });
  config
    .command('example')
    .summary('print a commented example config.yaml (it passes config check)')
    .action(() => {
      process.stdout.write(configExample);
    });
  return config;
}

async function loadConfigForCheck(
  file: string | undefined,
): Promise<{ file: string; config: Config; missing: boolean }> {
  const { loadConfigOnce } = await import('../settings.js');
  const loaded = await loadConfigOnce(file);
  const missing =
    file === undefined &&
    (await access(loaded.file).then(
      () => false,
      () => true,
    ));
  return { ...loaded, missing };
}
