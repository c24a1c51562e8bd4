import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { bashCompletion, zshCompletion } from '../../src/cli/completion.js';
import { commandDefinitions } from '../../src/cli/definitions.js';
import { fixtureProgram } from './fixture-program.js';

const definitions = commandDefinitions(fixtureProgram());

describe('command definitions', () => {
  it('reads verbs, sub-verbs, aliases, arguments and options from the program, not hidden ones', () => {
    expect(definitions.subcommands.map((c) => c.path.join(' '))).toEqual(['backup', 'run', 'generate']);
    const backup = definitions.subcommands[0];
    expect(backup?.subcommands.map((c) => c.path.join(' '))).toEqual([
      'backup incr',
      'backup diff',
      'backup showchain',
    ]);
    expect(backup?.subcommands[2]?.aliases).toEqual(['sc']);
    const run = definitions.subcommands[1];
    expect(run?.arguments.map((a) => a.value)).toEqual([
      { kind: 'words', words: ['incr', 'diff', 'full'] },
      { kind: 'domain' },
    ]);
    expect(run?.options.find((o) => o.names.includes('--config'))).toMatchObject({
      value: { kind: 'file' },
      env: 'UNIFI_BACKUP_CONFIG',
    });
  });
});

/** Runs the script's completion function in a real bash for the words typed (the last one is the cursor's). */
async function complete(script: string, words: readonly string[], bin: string): Promise<string[]> {
  const result = await execa(
    'bash',
    [
      '--norc',
      '--noprofile',
      '-c',
      'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _unifi_backup; printf "%s\\n" "${COMPREPLY[@]}"',
      'bash',
      script,
      'unifi-backup',
      ...words,
    ],
    { env: { PATH: `${bin}:${process.env.PATH ?? ''}` } },
  );
  return result.stdout.split('\n').filter((line) => line !== '');
}

describe('bash completion', () => {
  let script: string;
  let bin: string;
  beforeAll(() => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ub-completion-'));
    script = path.join(dir, 'unifi-backup.bash');
    writeFileSync(script, bashCompletion(definitions));
    // A virsh that knows two domains, one with a space, and records the URI it was asked about.
    bin = path.join(dir, 'bin');
    const virsh = path.join(bin, 'virsh');
    mkdirSync(bin);
    writeFileSync(
      virsh,
      '#!/bin/sh\n[ "$1" = -c ] && [ "$2" != qemu:///session ] && exit 1\nprintf "web1\\nmy vm\\n\\n"\n',
    );
    chmodSync(virsh, 0o755);
  });

  it('completes verbs, sub-verbs and aliases', async () => {
    expect(await complete(script, ['b'], bin)).toEqual(['backup']);
    expect(await complete(script, ['backup', ''], bin)).toEqual(['incr', 'diff', 'showchain', 'sc']);
    expect(await complete(script, ['--lock-dir', '/tmp', 'backup', 'd'], bin)).toEqual(['diff']);
  });

  it('completes levels and domain names from virsh', async () => {
    expect(await complete(script, ['run', ''], bin)).toEqual(['incr', 'diff', 'full']);
    expect(await complete(script, ['run', 'incr', ''], bin)).toEqual(['web1', 'my vm', 'all']);
    expect(await complete(script, ['backup', 'sc', 'w'], bin)).toEqual(['web1']);
    expect(await complete(script, ['run', 'incr', 'web1', ''], bin)).toEqual([]);
    expect(await complete(script, ['generate', 'web1', ''], bin)).toEqual(['web1', 'my vm', 'all']);
  });

  it('asks virsh on the connection given with --connect', async () => {
    expect(await complete(script, ['-c', 'qemu:///session', 'backup', 'incr', ''], bin)).toEqual([
      'web1',
      'my vm',
      'all',
    ]);
    expect(await complete(script, ['--connect', 'qemu:///other', 'backup', 'incr', ''], bin)).toEqual([
      'all',
    ]);
  });

  it('completes flags, global ones too, and their values', async () => {
    expect(await complete(script, ['backup', 'incr', '--q'], bin)).toEqual(['--quiesce']);
    expect(await complete(script, ['backup', 'incr', '--lo'], bin)).toEqual(['--lock-dir', '--log-format']);
    expect(await complete(script, ['--log-format', ''], bin)).toEqual(['human', 'json']);
    expect(await complete(script, ['backup', 'incr', '-s', path.dirname(bin) + '/b'], bin)).toEqual([bin]);
  });
});

describe('zsh completion', () => {
  it('loads the same tables through bashcompinit', () => {
    const script = zshCompletion(definitions);
    expect(script.startsWith('#compdef unifi-backup\n')).toBe(true);
    expect(script).toContain('bashcompinit');
    expect(script).toContain("'backup showchain'|'backup sc')");
    expect(script).toContain('complete -F _unifi_backup unifi-backup');
  });
});
