import { afterEach, describe, expect, it, vi } from 'vitest';
import { report } from '../../src/cli/report.js';

afterEach(() => {
  vi.restoreAllMocks();
});

function captured(run: () => void): { stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  run();
  return { stdout, stderr };
}

describe('report over all', () => {
  it('says there are no domains instead of printing a table header with nothing under it', () => {
    const out = captured(() => {
      report([], { json: false, all: true }, () => ['never']);
    });
    expect(out.stdout).toBe('');
    expect(out.stderr).toContain('no domains');
  });

  it('prints each domain and the summary table', () => {
    const out = captured(() => {
      report([{ domain: 'web', status: 'ok', value: 'fine' }], { json: false, all: true }, (v) => [v]);
    });
    expect(out.stdout).toMatch(/^fine\n\nDOMAIN +RESULT/);
    expect(out.stdout).toMatch(/\nweb +ok/);
  });
});
