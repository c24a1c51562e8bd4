import type { Host } from '../host/host.js';

/** How far a long job on one disk has come. */
export interface ProgressEvent {
  readonly domain: string;
  readonly target: string;
  readonly job: string;
  readonly percent: number;
}

/** What every operation gets from the CLI: the host, where state lives, and where to report. */
export interface OpsContext {
  readonly host: Host;
  readonly lockDir: string;
  readonly stateDir: string;
  readonly dryRun: boolean;
  /** Notes for humans (stderr); results are returned, not printed. */
  readonly log: (line: string) => void;
  readonly progress: (event: ProgressEvent) => void;
  readonly now: () => Date;
  /** How many domains of `all` run at once (default 1). */
  readonly jobs?: number;
}
