import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { fromConfig } from '../../src/profiles/config.js';
import type { ConfigObject } from '../../src/profiles/config.js';
import { buildProfileSet } from '../../src/profiles/model.js';
import { renderYaml } from '../../src/profiles/yaml.js';
import { myVm, originalExample } from './example.js';
import { compileSchemas, compileTimeoutMs, schemaProblems } from './schema.js';

const userFile = `# My backups — edited by hand
version: "1"

# the old NAS profile, keep it
nas:
  repository: sftp:nas:/restic # over ssh
  backup:
    source: /home

groups:
  # nightly group
  nightly:
    - nas
`;

const second = 'SECOND VM';

beforeAll(compileSchemas, compileTimeoutMs);

describe('renderYaml into an existing file', () => {
  it('adds a domain and keeps comments, foreign profiles and groups', () => {
    const once = renderYaml(buildProfileSet(originalExample, [myVm], '1'), '1', userFile);
    const twice = renderYaml(buildProfileSet(originalExample, [second], '1'), '1', once);
    for (const comment of [
      '# My backups — edited by hand',
      '# the old NAS profile, keep it',
      '# over ssh',
      '# nightly group',
    ]) {
      expect(twice).toContain(comment);
    }
    const config = parse(twice) as ConfigObject;
    expect(Object.keys(config)).toEqual([
      'version',
      'global',
      'nas',
      'MY-VM-NAME-incr',
      'MY-VM-NAME-diff',
      'MY-VM-NAME-full',
      'SECOND VM-incr',
      'SECOND VM-diff',
      'SECOND VM-full',
      'groups',
    ]);
    expect(config.groups).toEqual({
      nightly: ['nas'],
      'all-incr': ['MY-VM-NAME-incr', 'SECOND VM-incr'],
      'all-diff': ['MY-VM-NAME-diff', 'SECOND VM-diff'],
      'all-full': ['MY-VM-NAME-full', 'SECOND VM-full'],
    });
    expect(config.global).toEqual({ 'group-continue-on-error': true });
    expect(schemaProblems(config)).toEqual([]);
  });

  it('re-adding a domain replaces its profiles instead of duplicating them', () => {
    const once = renderYaml(buildProfileSet(originalExample, [myVm, second], '1'), '1', userFile);
    const changed = { ...originalExample, schedules: { ...originalExample.schedules, full: 'Sun 02:00' } };
    const again = renderYaml(buildProfileSet(changed, [myVm], '1'), '1', once);
    expect(again.match(/^MY-VM-NAME-full:/gm)).toHaveLength(1);
    const set = fromConfig(parse(again) as ConfigObject, 'p.yaml');
    expect(set.profiles['MY-VM-NAME-full']?.backup?.schedule).toBe('Sun 02:00');
    expect(set.profiles['SECOND VM-full']?.backup?.schedule).toBe('Sat 20:00');
    expect(set.groups['all-full']?.profiles).toEqual(['MY-VM-NAME-full', 'SECOND VM-full']);
    expect(again).toContain('# the old NAS profile, keep it');
  });

  it('adds to a version 2 file under profiles and groups.*.profiles', () => {
    const v2 = `version: "2"\n# mine\nprofiles:\n  nas:\n    repository: /r\ngroups:\n  all-incr:\n    profiles: [nas]\n`;
    const text = renderYaml(buildProfileSet(originalExample, [myVm], '2'), '2', v2);
    expect(text).toContain('# mine');
    const config = parse(text) as { profiles: object; groups: Record<string, unknown> };
    expect(Object.keys(config.profiles)).toEqual([
      'nas',
      'MY-VM-NAME-incr',
      'MY-VM-NAME-diff',
      'MY-VM-NAME-full',
    ]);
    expect(config.groups['all-incr']).toMatchObject({
      profiles: ['nas', 'MY-VM-NAME-incr'],
      schedules: { backup: { at: ['Mon..Fri 8,12,16,20:00'] } },
    });
  });

  it('starts a new file with the schema hint and refuses what it cannot edit', () => {
    const set = buildProfileSet(originalExample, [myVm], '1');
    expect(renderYaml(set, '1')).toMatch(/^# yaml-language-server: \$schema=.*config-1\.json/);
    expect(renderYaml(set, '1', '# only a comment\n')).toContain('MY-VM-NAME-incr:');
    const v2 = renderYaml(set, '2', '# only a comment\n');
    expect(v2).toMatch(/^# only a comment\n/);
    expect(parse(v2)).toMatchObject({ version: '2', profiles: { 'MY-VM-NAME-incr': {} } });
    expect(() => renderYaml(set, '1', '- a list\n', 'p.yaml')).toThrow(UsageError);
    expect(() => renderYaml(set, '1', 'a: [\n', 'p.yaml')).toThrow(/p\.yaml is not valid YAML/);
    expect(() => renderYaml(set, '1', 'version: "2"\n', 'p.yaml')).toThrow(/--config-version 2/);
  });
});
