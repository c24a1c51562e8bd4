import { beforeAll, describe, expect, it } from 'vitest';
import { fromConfig } from '../../src/profiles/config.js';
import type { ConfigVersion } from '../../src/profiles/config.js';
import { configFormats, formatFromPath, parseConfigText, renderConfig } from '../../src/profiles/format.js';
import { buildProfileSet } from '../../src/profiles/model.js';
import { myVm, originalExample } from './example.js';
import { compileSchemas, compileTimeoutMs, schemaProblems, sharedSchemaPath } from './schema.js';

const set = buildProfileSet(originalExample, [myVm, "it's a vm"], '1');

beforeAll(compileSchemas, compileTimeoutMs);

describe('renderConfig', () => {
  describe.each(configFormats)('%s', (format) => {
    it.each(['1', '2'] as ConfigVersion[])(
      'round-trips version %s: parsing what was written gives the same profiles',
      (version) => {
        const { text } = renderConfig(set, version, format);
        const parsed = parseConfigText(text, format, `profiles.${format}`);
        expect(parsed.version).toBe(version);
        expect(fromConfig(parsed, `profiles.${format}`)).toEqual(set);
      },
    );

    it('writes a version 1 file that resticprofile’s published schema accepts', () => {
      const parsed = parseConfigText(renderConfig(set, '1', format).text, format, 'x');
      expect(schemaProblems(parsed)).toEqual([]);
    });

    it('is valid against the shared reference schema too', () => {
      const parsed = parseConfigText(renderConfig(set, '1', format).text, format, 'x');
      expect(schemaProblems(parsed, sharedSchemaPath)).toEqual([]);
    });
  });

  it('catches a configuration the schema rejects (the original generator’s groups as a string)', () => {
    expect(schemaProblems({ version: '1', groups: { all: 'a-incr' } })).not.toEqual([]);
  });

  it('writes version 2 with profiles and groups nested as resticprofile expects', () => {
    const parsed = parseConfigText(renderConfig(set, '2', 'yaml').text, 'yaml', 'x');
    expect(Object.keys(parsed)).toEqual(['version', 'global', 'profiles', 'groups']);
    expect(parsed.groups).toEqual({
      'all-incr': { profiles: ['MY-VM-NAME-incr', "it's a vm-incr"] },
      'all-diff': { profiles: ['MY-VM-NAME-diff', "it's a vm-diff"] },
      'all-full': { profiles: ['MY-VM-NAME-full', "it's a vm-full"] },
    });
  });

  it('adds to an existing TOML or JSON file without duplicating, and says TOML comments are lost', () => {
    const first = renderConfig(buildProfileSet(originalExample, [myVm], '1'), '1', 'toml');
    const again = renderConfig(set, '1', 'toml', `# mine\n${first.text}`, 'p.toml');
    expect(again.notes).toEqual([expect.stringMatching(/comments are not kept/)]);
    const twice = renderConfig(set, '1', 'toml', again.text, 'p.toml');
    expect(fromConfig(parseConfigText(twice.text, 'toml', 'p.toml'), 'p.toml')).toEqual(set);
    const json = renderConfig(set, '2', 'json', renderConfig(set, '2', 'json').text);
    expect(fromConfig(parseConfigText(json.text, 'json', 'p.json'), 'p.json')).toEqual(set);
  });

  it('fills a TOML file that holds only comments, in either version', () => {
    const { text } = renderConfig(set, '2', 'toml', '# to be filled\n', 'p.toml');
    expect(fromConfig(parseConfigText(text, 'toml', 'p.toml'), 'p.toml')).toEqual(set);
  });

  it('refuses to add version 2 profiles to a version 1 file', () => {
    const v1 = renderConfig(set, '1', 'json').text;
    expect(() => renderConfig(set, '2', 'json', v1, 'p.json')).toThrow(
      /version 1 configuration; generate with --config-version 1/,
    );
  });

  it('tells formats apart by extension', () => {
    expect(formatFromPath('/etc/resticprofile/profiles.yml')).toBe('yaml');
    expect(formatFromPath('profiles.conf')).toBe('toml');
    expect(formatFromPath('profiles.json')).toBe('json');
    expect(formatFromPath('profiles')).toBeUndefined();
  });
});
