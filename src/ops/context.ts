import type { Host } from '../host/host.js';

/** What every operation gets from the CLI: the host, where state lives, and where to report. */
export interface OpsContext {
  readonly host: Host;
  readonly lockDir: string;
  readonly stateDir: string;
  readonly dryRun: boolean;
  /** Progress and notes for humans (stderr); results are returned, not printed. */
  readonly log: (line: string) => void;
  readonly now: () => Date;
}
