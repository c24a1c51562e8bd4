import { describe, expect, it } from 'vitest';
import { ProgramTimeoutError, programRunner } from '../../src/host/runner.js';
import { Virsh } from '../../src/host/virsh.js';
import { VirshShell, commandLine } from '../../src/host/virshshell.js';
import { adoptVirshShell, startVirshShellEarly, virshShellArgv } from '../../src/host/virshprocess.js';

// Real virsh on libvirt's built-in test driver: no daemon, a domain called `test`.
const uri = 'test:///default';
const argv = ['virsh', '--quiet', '--connect', uri];

async function alone(args: readonly string[]): Promise<string> {
  return (await programRunner({ argv: [...argv, ...args] })).stdout;
}

const hostile = [
  "it's",
  'two words',
  'semi;colon',
  '#hash',
  'mid#hash',
  'back\\slash',
  '\\',
  'double"quote',
  `'`,
  `''`,
  'dollar$HOME',
  'ünïcødé ✓ 名前',
  '--looks-like-an-option',
  '',
  '  spaces  ',
  'a\'b"c\\d;e#f g',
  // Longer than a terminal line: readline's echo of it must not wrap.
  `long ${'x'.repeat(5000)} ${"'".repeat(300)}`,
];

describe('commandLine: arguments as virsh splits them', () => {
  it('plain words stay as they are; others are single-quoted', () => {
    expect(commandLine(['dominfo', '--domain', 'vm-1.test'])).toBe('dominfo --domain vm-1.test');
    expect(commandLine(['dominfo', '--domain', "it's a vm"])).toBe(`dominfo --domain 'it'\\''s a vm'`);
  });

  it('refuses control characters: a newline ends the line, readline acts on a tab', () => {
    for (const bad of ['a\nb', 'a\tb', 'a\rb', 'a\u0000b', 'a\u007fb'])
      expect(commandLine(['dominfo', '--domain', bad])).toBeUndefined();
  });

  it('every hostile argument reaches virsh as one argument, the same as in a run of its own', async () => {
    const shell = new VirshShell(argv);
    for (const word of hostile) {
      const args = ['echo', '--', word, 'END'];
      const line = commandLine(args);
      expect(line).toBeDefined();
      expect(await shell.ask(line ?? '', 30_000), JSON.stringify(word)).toBe(await alone(args));
    }
  });
});

describe('VirshShell: one virsh for many questions', () => {
  it('answers as separate runs do, in order, and leaves failures to a run of their own', async () => {
    const lines: string[] = [];
    const shell = new VirshShell(argv, (line) => lines.push(line));
    // (dominfo's CPU time moves between two asks.)
    const questions = [
      ['domstate', '--domain', 'test', '--reason'],
      ['dumpxml', '--domain', 'test'],
      ['dumpxml', '--domain', 'test', '--inactive'],
      ['list', '--all', '--name'],
      ['list', '--all', '--uuid', '--name'],
      ['echo', 'one; echo', 'two'],
    ];
    const answers = await Promise.all(questions.map((q) => shell.ask(commandLine(q) ?? '', 30_000)));
    for (const [i, question] of questions.entries()) expect(answers[i]).toBe(await alone(question));
    expect(lines).toHaveLength(questions.length);
    expect(await shell.ask(`dominfo --domain 'no such'`, 30_000)).toBeUndefined();
    expect(await shell.ask('no-such-command', 30_000)).toBeUndefined();
    // Still in step after the failures.
    expect(await shell.ask('dumpxml --domain test', 30_000)).toBe(
      await alone(['dumpxml', '--domain', 'test']),
    );
  });

  it('a Virsh with a shell reads and fails the same as one without', async () => {
    const plain = new Virsh(programRunner, uri);
    const shelled = new Virsh(programRunner, uri, undefined, new VirshShell(argv));
    expect(await shelled.info('test')).toEqual(await plain.info('test'));
    expect(await shelled.dumpXml('test', 'inactive')).toBe(await plain.dumpXml('test', 'inactive'));
    const listed = await plain.readAll();
    expect(await shelled.readAll()).toEqual(listed);
    // The batched read answered (list filters, domstate, definitions) on a real virsh.
    expect(listed.map((d) => d.definitions?.info)).toEqual([await plain.info('test')]);
    expect(await shelled.readPlain('test', ['live', 'inactive'])).toEqual(
      await plain.readPlain('test', ['live', 'inactive']),
    );
    for (const name of ['no such', "it's;#\\", 'line\nbreak']) {
      const expected = await plain.info(name).catch((error: unknown) => error);
      const actual = await shelled.info(name).catch((error: unknown) => error);
      expect(actual).toBeInstanceOf(Error);
      expect(actual).toEqual(expected);
      expect((actual as Error).constructor).toBe((expected as Error).constructor);
    }
  });

  it('a program that never answers is killed at the timeout; the next question starts another', async () => {
    const shell = new VirshShell(['sleep', '600']);
    const hung = shell.ask('dominfo --domain test', 200);
    await expect(hung).rejects.toThrow(ProgramTimeoutError);
    await expect(shell.ask('dominfo --domain test', 200)).rejects.toThrow(ProgramTimeoutError);
  });

  it('a missing program or one that exits answers nothing, so virsh runs on its own', async () => {
    expect(await new VirshShell(['virsh-not-here']).ask('list', 30_000)).toBeUndefined();
    const exits = new VirshShell(['true']);
    expect(await exits.ask('list', 30_000)).toBeUndefined();
    expect(await exits.ask('list', 30_000)).toBeUndefined();
  });
});

describe('VirshShell: the shell started at start-up', () => {
  it('is taken by the first shell for the same connection, after the output it printed meanwhile', async () => {
    startVirshShellEarly(virshShellArgv(uri));
    // Let it start and print whatever it prints before reading a line.
    await alone(['version']);
    const shell = new VirshShell(virshShellArgv(uri));
    expect(await shell.ask('list --all --name', 10_000)).toBe(await alone(['list', '--all', '--name']));
    expect(adoptVirshShell(virshShellArgv(uri))).toBeUndefined();
  });

  it('started for another connection, it is ended and not used', async () => {
    startVirshShellEarly(virshShellArgv('test:///nonexistent-uri'));
    const other = adoptVirshShell(virshShellArgv(uri));
    expect(other).toBeUndefined();
    const shell = new VirshShell(virshShellArgv(uri));
    expect(await shell.ask('domstate test', 10_000)).toBe(await alone(['domstate', 'test']));
  });

  it('one that died before it was taken is not used', async () => {
    startVirshShellEarly(['virsh-not-installed-here']);
    await alone(['version']);
    expect(adoptVirshShell(['virsh-not-installed-here'])).toBeUndefined();
  });
});
