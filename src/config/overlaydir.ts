import type { Config } from './config.js';

/**
 * The overlay folder for `domain`'s block-device disks: the option when given, else the domain's
 * own setting (`domains.<name>.overlay-dir`), else the global one.
 */
export function overlayDirOf(
  option: string | undefined,
  config: Config | undefined,
  domain: string,
): string | undefined {
  return option ?? config?.domains?.[domain]?.['overlay-dir'] ?? config?.['overlay-dir'];
}
