import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';

// esbuild defines the version at build time; the help text does not depend on it.
(globalThis as Record<string, unknown>).__VERSION__ = '0.0.0-test';
const { buildProgram } = await import('../../src/cli/main.js');

function everyCommand(command: Command): Command[] {
  return [command, ...command.commands.flatMap(everyCommand)];
}

describe('help text', () => {
  it('leaves wrapping to commander: a line break only before a table row, a blank line or the seed form', () => {
    const breaks: string[] = [];
    for (const command of everyCommand(buildProgram()))
      for (const line of command.description().split('\n').slice(1))
        if (line !== '' && !/^\s/.test(line) && !line.startsWith('Seed form:'))
          breaks.push(`${command.name()}: …${line}`);
    expect(breaks).toEqual([]);
  });
});
