import type { DomainOutcome } from './all.js';
import { backupLevels, recordedVerbs } from './run-record.js';
import type { DomainStatus } from './status.js';
import { verdicts } from './verdict.js';

type Labels = Readonly<Record<string, string>>;

interface Family {
  readonly name: string;
  readonly help: string;
  readonly samples: { readonly labels: Labels; readonly value: number }[];
}

/** A label value as the text exposition format writes it: backslash, double quote and newline escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function sampleLine(name: string, labels: Labels, value: number): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
  return `${name}${pairs.length === 0 ? '' : `{${pairs.join(',')}}`} ${Number.isFinite(value) ? value : 'NaN'}`;
}

const seconds = (iso: string) => Date.parse(iso) / 1000;

/** Every metric `unifi-backup metrics` writes, in this order (docs/metrics.md describes each). */
const families = {
  info: 'The unifi-backup version that wrote these metrics (always 1).',
  domain_readable: '1 when the status of the domain could be read, 0 when reading it failed.',
  verdict:
    "The domain's status verdict: 1 for the current one of ok, attention, stale, failing; 0 for the others.",
  last_success_timestamp_seconds: 'End of the newest successful run or backup of each level (Unix time).',
  last_run_timestamp_seconds: 'End of the newest run of each verb (Unix time).',
  last_run_success: '1 when the newest run of the verb succeeded, 0 when it failed.',
  last_run_duration_seconds: 'How long the newest run of the verb took.',
  last_run_bytes_added: 'Bytes the restic repository grew by in the newest successful run.',
  backups_failed_in_row: 'Run and backup attempts that failed since the last successful one.',
  chain_length: "Layers in the disk's chain, active layer included.",
  chain_bytes: "Bytes the disk's chain occupies on the host (allocated).",
  maintenance_open: '1 while a maintenance window is open.',
  maintenance_since_timestamp_seconds: 'When the open maintenance window was entered (Unix time).',
  journal_pending: '1 while an interrupted operation waits for repair.',
  restic_newest_snapshot_timestamp_seconds:
    'Time of the newest restic snapshot of the domain (status --restic).',
} as const;
type FamilyKey = keyof typeof families;

/** Prometheus text exposition (version 0.0.4) of every domain's status; all metrics are gauges. */
export function renderMetrics(outcomes: readonly DomainOutcome<DomainStatus>[], version: string): string {
  const samples = new Map<FamilyKey, Family['samples']>(
    Object.keys(families).map((k) => [k as FamilyKey, []]),
  );
  const add = (key: FamilyKey, labels: Labels, value: number) => samples.get(key)?.push({ labels, value });
  add('info', { version }, 1);
  for (const outcome of outcomes) {
    const domain = outcome.domain;
    add('domain_readable', { domain }, outcome.status === 'ok' ? 1 : 0);
    if (outcome.status !== 'ok') continue;
    const s = outcome.value;
    for (const v of verdicts) add('verdict', { domain, verdict: v }, s.verdict === v ? 1 : 0);
    for (const level of backupLevels) {
      const r = s.runs.lastSuccess[level];
      if (r !== undefined) add('last_success_timestamp_seconds', { domain, level }, seconds(r.end));
    }
    for (const verb of recordedVerbs) {
      const r = s.runs.latest[verb];
      if (r === undefined) continue;
      add('last_run_timestamp_seconds', { domain, verb }, seconds(r.end));
      add('last_run_success', { domain, verb }, r.result === 'ok' ? 1 : 0);
      add('last_run_duration_seconds', { domain, verb }, seconds(r.end) - seconds(r.start));
    }
    const added = s.runs.latest.run;
    if (added?.bytesAdded !== undefined && added.result === 'ok')
      add('last_run_bytes_added', { domain }, added.bytesAdded);
    add('backups_failed_in_row', { domain }, s.runs.failedInRow);
    for (const disk of s.disks) {
      add('chain_length', { domain, disk: disk.target }, disk.chainLength);
      add('chain_bytes', { domain, disk: disk.target }, disk.bytes);
    }
    add('maintenance_open', { domain }, s.maintenance === undefined ? 0 : 1);
    if (s.maintenance !== undefined)
      add('maintenance_since_timestamp_seconds', { domain }, seconds(s.maintenance));
    add('journal_pending', { domain }, s.pendingJournal === undefined ? 0 : 1);
    const newest = s.restic?.newest;
    if (s.restic !== undefined && newest !== undefined)
      add('restic_newest_snapshot_timestamp_seconds', { domain, host: s.restic.host }, seconds(newest.time));
  }
  const lines: string[] = [];
  for (const [key, help] of Object.entries(families)) {
    const list = samples.get(key as FamilyKey) ?? [];
    if (list.length === 0) continue;
    const name = `unifi_backup_${key}`;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    lines.push(...list.map((sample) => sampleLine(name, sample.labels, sample.value)));
  }
  return `${lines.join('\n')}\n`;
}
