import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = fileURLToPath(new URL('../../src', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(full) : entry.name.endsWith('.ts') ? [full] : [];
  });
}

// Ways a string becomes shell code: spawn options, child_process helpers that take a command line,
// execa's command-string forms, and running a shell program directly.
const shellPatterns: readonly [string, RegExp][] = [
  ['shell: true', /\bshell\s*:\s*(true|['"`])/],
  ['child_process exec()', /(?<![.\w])exec\s*\(/],
  ['execSync', /\bexecSync\b/],
  ['execaCommand', /\bexecaCommand(Sync)?\b/],
  ['execa/zx template $`…`', /\$`[^`\s]/],
  ['a shell program', /['"`](\/bin\/)?(sh|bash|dash|zsh)['"`]\s*,\s*\[?\s*['"`]-c['"`]/],
];

describe('no shell anywhere (DESIGN §4, invariant 4)', () => {
  it('src/ never runs a shell or a command line', () => {
    const hits: string[] = [];
    for (const file of sourceFiles(src)) {
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          for (const [what, pattern] of shellPatterns)
            if (pattern.test(line))
              hits.push(`${path.relative(src, file)}:${i + 1}: ${what}: ${line.trim()}`);
        });
    }
    expect(hits).toEqual([]);
  });

  it('the patterns catch what they are meant to', () => {
    const caught = (line: string) => shellPatterns.some(([, p]) => p.test(line));
    expect(caught("spawn('x', [], { shell: true })")).toBe(true);
    expect(caught("exec('rm -rf ' + dir)")).toBe(true);
    expect(caught('childProcess.execSync(cmd)')).toBe(true);
    expect(caught('await execaCommand(line)')).toBe(true);
    expect(caught('await $`virsh ${x}`')).toBe(true);
    expect(caught("runner({ argv: ['sh', '-c', text] })")).toBe(true);
    expect(caught('const match = pattern.exec(text)')).toBe(false);
  });
});
