import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { commandDefinitions } from '../../src/cli/definitions.js';
import { manPage } from '../../src/cli/manpage.js';
import { fixtureProgram } from './fixture-program.js';

const page = manPage(commandDefinitions(fixtureProgram()), { version: '1.2.3', date: '2026-11-26' });

describe('man page', () => {
  it('has the sections of a man page, every command with its options, no hidden ones', () => {
    expect(page.split('\n')[0]).toBe(
      '.TH UNIFI\\-BACKUP 1 "2026-11-26" "unifi\\-backup 1.2.3" "User Commands"',
    );
    for (const section of [
      'NAME',
      'SYNOPSIS',
      'DESCRIPTION',
      'COMMANDS',
      'FILES',
      'ENVIRONMENT',
      'EXIT STATUS',
    ])
      expect(page).toContain(`\n.SH ${section}\n`);
    expect(page).toContain('.SS "unifi\\-backup backup incr [options] <domain>"');
    expect(page).toContain('.SS "unifi\\-backup run [options] <level> <domain>"');
    expect(page).toContain('.B \\-s, \\-\\-memory\\-state <dir>');
    expect(page).toContain('(one of: human, json)');
    expect(page).toContain('(env: UNIFI_BACKUP_CONFIG)');
    expect(page).toContain('Also: sc.');
    expect(page).not.toContain('secret');
    // no text line may start with a roff control character
    expect(page.split('\n').filter((l) => /^'/.test(l))).toEqual([]);
  });

  it('renders with groff without warnings (groff-base, installed by prepare.sh)', async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ub-man-')), 'unifi-backup.1');
    writeFileSync(file, page);
    // -P-cbou: plain text, no overstrike for bold and underline
    const rendered = await execa('groff', ['-man', '-Tutf8', '-ww', '-P-cbou', file]);
    expect(rendered.stderr).toBe('');
    const text = rendered.stdout;
    expect(text).toContain('unifi-backup - Back up running domains');
    expect(text).toContain('unifi-backup backup showchain [options] <domain>');
  });
});
