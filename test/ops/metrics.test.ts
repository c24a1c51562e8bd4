import { describe, expect, it } from 'vitest';
import type { DomainOutcome } from '../../src/ops/all.js';
import { escapeLabelValue, renderMetrics } from '../../src/ops/metrics.js';
import { summarizeRuns } from '../../src/ops/run-record.js';
import type { DomainStatus } from '../../src/ops/status.js';

const status = (domain: string): DomainStatus => ({
  domain,
  runState: 'shut off',
  persistent: true,
  disks: [{ target: 'vda', chainLength: 2, bytes: 4096 }],
  lastBackup: {},
  runs: summarizeRuns([
    {
      verb: 'run',
      level: 'incr',
      start: '2026-03-02T10:00:00Z',
      end: '2026-03-02T10:00:30Z',
      result: 'ok',
      snapshot: 'abcdef12',
      bytesAdded: 1234,
    },
  ]),
  maintenance: '2026-03-02T11:00:00Z',
  verdict: 'attention',
  reasons: ['x'],
});

describe('metrics', () => {
  it('escapes backslash, double quote and newline in label values', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
  });

  it('writes every family once with HELP and TYPE, one sample per domain and label set', () => {
    const outcomes: DomainOutcome<DomainStatus>[] = [
      { domain: 'we"b\\1', status: 'ok', value: status('we"b\\1') },
      { domain: 'broken', status: 'failed', error: new Error('cannot read') },
    ];
    const text = renderMetrics(outcomes, '1.2.3');
    expect(text).toContain('unifi_backup_info{version="1.2.3"} 1\n');
    expect(text).toContain('unifi_backup_domain_readable{domain="we\\"b\\\\1"} 1\n');
    expect(text).toContain('unifi_backup_domain_readable{domain="broken"} 0\n');
    expect(text).toContain('unifi_backup_verdict{domain="we\\"b\\\\1",verdict="attention"} 1\n');
    expect(text).toContain('unifi_backup_verdict{domain="we\\"b\\\\1",verdict="ok"} 0\n');
    expect(text).toContain(
      `unifi_backup_last_success_timestamp_seconds{domain="we\\"b\\\\1",level="incr"} ${Date.parse('2026-03-02T10:00:30Z') / 1000}\n`,
    );
    expect(text).toContain('unifi_backup_last_run_duration_seconds{domain="we\\"b\\\\1",verb="run"} 30\n');
    expect(text).toContain('unifi_backup_last_run_bytes_added{domain="we\\"b\\\\1"} 1234\n');
    expect(text).toContain('unifi_backup_chain_bytes{domain="we\\"b\\\\1",disk="vda"} 4096\n');
    expect(text).toContain('unifi_backup_maintenance_open{domain="we\\"b\\\\1"} 1\n');
    expect(text).not.toContain('restic_newest');
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE'));
    expect(new Set(types).size).toBe(types.length);
    expect(types.every((l) => l.endsWith(' gauge'))).toBe(true);
  });
});
