import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDomainXml } from '../../src/host/domainxml.js';
import { isolatedEnv, runCli, runCliOk } from '../cli-run.js';
import { expectBatchedReadAgrees } from '../host/batched-read.js';
import type { CliResult } from '../cli-run.js';
import type { TestDomain } from '../rig/domain.js';
import { useTestDomains } from '../rig/test-domains.js';
import { tryVirsh, virsh } from '../rig/virsh.js';

/**
 * Bad input of every kind gets a clear message (naming what is wrong and what to do) and changes
 * nothing. docs/bad-input.md lists each case with its message: UB_BAD_INPUT_TABLE=FILE writes them.
 */
const domains = useTestDomains();
const env = isolatedEnv();
// No '/' in a domain name (libvirt's rule): a canary relative to wherever a shell would run.
const canary = `ubt-canary-${process.pid}`;
const canaryMade = () =>
  [canary, path.join('/', canary), path.join(os.tmpdir(), canary)].some((f) => existsSync(f));
const seen: { case: string; args: readonly string[]; exitCode: number; message: string }[] = [];

afterAll(() => {
  const file = process.env.UB_BAD_INPUT_TABLE;
  if (file !== undefined) writeFileSync(file, JSON.stringify(seen, null, 2));
});

async function attempt(name: string, args: readonly string[], exitCode: number, message: string | RegExp) {
  const result: CliResult = await runCli(args, env);
  const text = `${result.stderr}\n${result.stdout}`.trim();
  seen.push({ case: name, args, exitCode: result.exitCode, message: text });
  expect(result.exitCode, `${name}: ${text}`).toBe(exitCode);
  if (typeof message === 'string') expect(text, name).toContain(message);
  else expect(text, name).toMatch(message);
  return result;
}

const noSuchDomain = (name: string) =>
  `domain '${name}': no such domain. List domains with: virsh list --all`;

describe('bad input without a domain', () => {
  const cases: [string, string[], number, string | RegExp][] = [
    ['unknown domain', ['backup', 'incr', 'ubt-no-such'], 1, noSuchDomain('ubt-no-such')],
    [
      'name with spaces and quotes',
      ['backup', 'incr', `ubt no "such" 'one'`],
      1,
      noSuchDomain(`ubt no "such" 'one'`),
    ],
    ['name with a newline', ['backup', 'incr', 'ubt\nline'], 1, noSuchDomain('ubt\nline')],
    ['name with $(…)', ['backup', 'incr', `$(touch ${canary})`], 1, noSuchDomain(`$(touch ${canary})`)],
    ['name with ;', ['files', `x; touch ${canary}`], 1, noSuchDomain(`x; touch ${canary}`)],
    ['name with a leading -', ['backup', 'incr', '-rf'], 2, "error: unknown option '-rf'"],
    ['leading - after --', ['backup', 'incr', '--', '-rf'], 1, noSuchDomain('-rf')],
    ['unicode name', ['status', 'żółw-🐢'], 1, noSuchDomain('żółw-🐢')],
    ['repair of an unknown domain', ['repair', 'ubt-no-such'], 1, noSuchDomain('ubt-no-such')],
    ['unknown verb', ['backup', 'sideways', 'vm'], 2, "error: unknown command 'sideways'"],
    ['missing domain', ['backup', 'incr'], 2, "error: missing required argument 'domain'"],
    ['unknown flag', ['backup', 'incr', '--frobnicate', 'vm'], 2, "error: unknown option '--frobnicate'"],
    [
      'flag without its value',
      ['backup', 'incr', '--exclude'],
      2,
      "option '--exclude <disk>' argument missing",
    ],
    [
      '--max-incr 0',
      ['backup', 'incr', '--max-incr', '0', 'vm'],
      2,
      "--max-incr must be a whole number ≥ 1, not '0'",
    ],
    ['--max-incr abc', ['backup', 'incr', '--max-incr', 'abc', 'vm'], 2, "not 'abc'"],
    [
      'seed form, no domain',
      ['-a', 'backup', '-m', 'incr'],
      2,
      "expected exactly one domain name (or 'all'), got none",
    ],
    ['seed form, unknown mode', ['-a', 'backup', '-m', 'weird', 'vm'], 2, "unknown command 'weird'"],
    [
      'unreachable libvirt URI',
      ['--connect', 'bogus:///x', 'status', 'vm'],
      1,
      /cannot connect to libvirt at bogus:\/\/\/x: .*Check --connect/,
    ],
    [
      'lock folder is a file',
      ['--lock-dir', '/etc/hostname', 'backup', 'incr', 'vm'],
      1,
      'cannot create the lock folder /etc/hostname (EEXIST)',
    ],
    [
      'lock folder is world-writable',
      ['--lock-dir', '/tmp', 'backup', 'incr', 'vm'],
      1,
      "the lock folder /tmp is writable by group or others (mode 1777): another user could remove or replace what unifi-backup keeps there, so nothing was done. Make it private (chown root:root '/tmp'; chmod 700 '/tmp') or give another folder with --lock-dir",
    ],
    [
      'state folder is a file',
      ['--state-dir', '/etc/hostname', 'repair', 'vm'],
      1,
      'the state folder /etc/hostname is not a folder. Nothing was changed. Give a folder with --state-dir',
    ],
    [
      'missing config file',
      ['run', 'incr', 'vm', '--config', '/nonexistent.yaml'],
      2,
      '/nonexistent.yaml: no such file; check the path given with --config',
    ],
    [
      'bad schedule (weekday)',
      ['generate', '-i', 'Mon..Fry 25:00', 'vm'],
      2,
      '--incr "Mon..Fry 25:00" is not a valid systemd calendar expression: "Fry" is not a weekday',
    ],
    [
      'bad schedule (words)',
      ['generate', '-f', 'every day', 'vm'],
      2,
      '--full "every day" is not a valid systemd calendar expression',
    ],
    [
      'bad keep count',
      ['generate', '-i', 'daily', '--keep-last', '-1', 'vm'],
      2,
      "--keep-last must be a whole number ≥ 0, not '-1'",
    ],
    [
      'schedule every 5 minutes',
      ['generate', '-i', '*:0/5', 'vm'],
      2,
      'it fires 5 min apart, more often than every 15 minutes. Give --force',
    ],
    ['schedule in the past', ['generate', '-f', '2001-01-01', 'vm'], 2, 'it never elapses'],
    [
      'missing password file',
      ['generate', '-i', 'daily', '--password-file', '/nonexistent/pw', 'vm'],
      2,
      '--password-file /nonexistent/pw: ENOENT',
    ],
    [
      'missing notify config',
      ['generate', '-i', 'daily', '--notify-config', '/nonexistent.yaml', '--notify-alias', 'ops', 'vm'],
      2,
      '/nonexistent.yaml: no such file',
    ],
    [
      'profile option with --systemd',
      ['generate', '-i', 'daily', '--systemd', '/nonexistent/units', '--repository', '/r', 'vm'],
      2,
      '--repository applies to resticprofile profiles, not to systemd units',
    ],
    [
      'glob in a scheduled domain name',
      ['generate', '-i', 'daily', 'vm*'],
      2,
      'cannot be in a restic tag that resticprofile passes on',
    ],
    [
      'template in a repository',
      ['generate', '-i', 'daily', '--repository', '{{ .Env.HOME }}', 'vm'],
      2,
      `"{{" and "}}" break resticprofile's templates`,
    ],
    [
      'file list for all',
      ['backup', 'incr', '--files-to', '/nonexistent/list', 'all'],
      2,
      "--files-to writes one domain's list",
    ],
    [
      'notify URL without a scheme',
      ['notify', 'send', '--url', 'notaurl', '--msg', 'x'],
      2,
      'scheme: expected scheme://…',
    ],
    [
      'notify URL of an unknown service',
      ['notify', 'send', '--url', 'foo://x', '--msg', 'x'],
      2,
      'foo URL: scheme: not a supported service',
    ],
    [
      'notify URL missing its token',
      ['notify', 'send', '--url', 'telegram://@telegram?chats=1', '--msg', 'x'],
      2,
      'telegram URL: token: expected BOTID:SECRET before the @',
    ],
  ];
  it.each(cases)('%s', async (name, args, exitCode, message) => {
    await attempt(name, args, exitCode, message);
  });

  it('bad config files: unparsable YAML, bad values, unknown keys — every problem at once', async () => {
    const dir = path.dirname(env.UNIFI_BACKUP_STATE_DIR ?? os.tmpdir());
    const broken = path.join(dir, 'broken.yaml');
    writeFileSync(broken, 'restic:\n  repository: [\n');
    await attempt('unparsable config', ['run', 'incr', 'vm', '--config', broken], 2, `${broken}: 1 problem:`);
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'restic:\n  repository: ""\n  colour: blue\nretention:\n  keep-last: 0\n');
    await attempt('bad config values', ['run', 'incr', 'vm', '--config', bad], 2, `${bad}: 3 problems:`);
    expect(seen.at(-1)?.message).toContain('retention.keep-last: at least 1');
    expect(seen.at(-1)?.message).toContain('restic: Unrecognized key: "colour"');
  });

  it('changed nothing: no code ran, no journal or lock was left', () => {
    expect(canaryMade()).toBe(false);
    const journal = path.join(env.UNIFI_BACKUP_STATE_DIR ?? '', 'journal');
    expect(existsSync(journal) ? readdirSync(journal) : []).toEqual([]);
  });
});

async function definedSources(name: string): Promise<(string | undefined)[]> {
  return parseDomainXml((await virsh('dumpxml', '--inactive', '--domain', name)).stdout).disks.map(
    (d) => d.source,
  );
}

describe('bad input with a domain', () => {
  it('vmdk, network and cdrom disks; a missing or unreadable backing file; a disk shared by two domains', async () => {
    const domain = await domains.create({
      disks: 1,
      rawDisk: true,
      cdrom: 'iso',
      writer: false,
      start: false,
    });
    const listing = () => readdirSync(domain.dir).sort();
    // The extra disk is declared vmdk: a format the tool does not handle.
    const xml = (await virsh('dumpxml', '--inactive', '--domain', domain.name)).stdout
      .replace(/type='raw'(\/>\s*<source file='[^']*\/raw\.img')/, "type='vmdk'$1")
      .replace(
        '</devices>',
        "<disk type='network' device='disk'><driver name='qemu' type='raw'/>" +
          "<source protocol='nbd' name='x'><host name='127.0.0.1' port='10809'/></source>" +
          "<target dev='vdf' bus='virtio'/></disk></devices>",
      );
    const xmlFile = path.join(domain.dir, 'with-network.xml');
    writeFileSync(xmlFile, xml);
    await virsh('define', '--file', xmlFile);
    let before = listing();
    const defined = await definedSources(domain.name);
    const raw = domain.rawDisk?.target ?? '';
    await attempt(
      'vmdk disk',
      ['backup', 'incr', domain.name],
      1,
      `disk ${raw} of domain '${domain.name}' (${domain.rawDisk?.path}) is vmdk, neither qcow2 nor raw`,
    );
    await attempt(
      'network disk',
      ['backup', 'incr', '--exclude', raw, domain.name],
      1,
      `disk vdf of domain '${domain.name}' (x) is a network disk, neither a file nor a block device`,
    );
    expect(listing()).toEqual(before);
    expect(await definedSources(domain.name)).toEqual(defined);
    // cdrom drives are ignored without a word; excluded disks stay as they were.
    await runCliOk(['backup', 'incr', '--exclude', raw, '--exclude', 'vdf', domain.name], env);
    const after = await definedSources(domain.name);
    expect(after.slice(1)).toEqual(defined.slice(1));
    const top = after[0] ?? '';

    // The backing file missing, then not an image at all.
    const base = domain.disks[0]?.path ?? '';
    before = listing().filter((f) => f !== path.basename(base));
    renameSync(base, `${base}.away`);
    try {
      await attempt(
        'missing backing file',
        ['backup', 'incr', '--exclude', raw, '--exclude', 'vdf', domain.name],
        1,
        `disk vda of domain '${domain.name}': cannot read its chain from ${top}`,
      );
      writeFileSync(base, 'not an image\n');
      await attempt(
        'unreadable backing file',
        ['backup', 'incr', '--exclude', raw, '--exclude', 'vdf', domain.name],
        1,
        /cannot read its chain from .*Check that every file of the chain exists and is readable/,
      );
    } finally {
      renameSync(`${base}.away`, base);
    }
    expect(listing().filter((f) => f !== path.basename(base))).toEqual(before);
    expect(await definedSources(domain.name)).toEqual(after);

    // A second domain defined on the same active layer.
    const twin = `${domain.name}-twin`;
    const twinXml = (await virsh('dumpxml', '--inactive', '--domain', domain.name)).stdout
      .replace(/<name>[^<]*<\/name>/, `<name>${twin}</name>`)
      .replace(/<uuid>[^<]*<\/uuid>/, '');
    const twinFile = path.join(domain.dir, 'twin.xml');
    writeFileSync(twinFile, twinXml);
    await virsh('define', '--file', twinFile);
    try {
      before = listing();
      await attempt(
        'disk shared by two domains',
        ['backup', 'incr', '--exclude', raw, '--exclude', 'vdf', domain.name],
        1,
        `disk vda of domain '${domain.name}': its active layer ${top} is also a disk of '${twin}'`,
      );
      expect(listing()).toEqual(before);
      expect(await definedSources(domain.name)).toEqual(after);
    } finally {
      await tryVirsh('undefine', '--domain', twin);
    }
  });

  it('names and paths with quotes, ;, $(…), a leading -, unicode: data, never code', async () => {
    const name = `-ubt; "q" 'a' $(touch ${canary}) żółw`;
    const domain = await domains.create({
      name,
      dirName: `-ubt dir; $(touch ${canary}) ż`,
      writer: false,
      start: false,
    });
    await attempt(
      'domain name with a leading - (no --)',
      ['backup', 'incr', name],
      2,
      'error: unknown option',
    );
    await runCliOk(['backup', 'incr', '--', name], env);
    const status = JSON.parse((await runCliOk(['--json', 'status', '--', name], env)).stdout) as {
      domain: string;
      disks: { chainLength: number }[];
    };
    expect(status.domain).toBe(name);
    expect(status.disks[0]?.chainLength).toBe(2);
    // `all` reads every domain in one batched virsh run, naming them by UUID: this one too.
    const every = JSON.parse((await runCli(['--json', 'status', 'all'], env)).stdout) as {
      domain: string;
      result?: { domain: string; disks: { chainLength: number }[] };
    }[];
    expect(every.find((e) => e.domain === name)?.result?.disks[0]?.chainLength).toBe(2);
    expect(existsSync(path.join(domain.dir, `${name}.xml`))).toBe(true);
    expect(canaryMade()).toBe(false);
  });
});

describe('a transient domain', () => {
  it('takes part like any running domain: live snapshot, nothing persistent to update', async () => {
    const domain = await domains.create({ writer: false, start: false });
    await virsh('start', '--domain', domain.name);
    await virsh('undefine', '--domain', domain.name);
    await expectBatchedReadAgrees([domain.name]);
    await runCliOk(['backup', 'incr', domain.name], env);
    const status = JSON.parse((await runCliOk(['--json', 'status', domain.name], env)).stdout) as {
      persistent: boolean;
      disks: { chainLength: number }[];
    };
    expect(status.persistent).toBe(false);
    expect(status.disks[0]?.chainLength).toBe(2);
    expect((await runCliOk(['repair', domain.name], env)).stdout).toBe(`${domain.name}: nothing to repair`);
  });
});

describe('secrets never reach output (DESIGN §4, invariant 7)', () => {
  const secrets = ['ResticPw-Secret-91', 'RepoPw-Secret-92', 'AwsKey-Secret-93', '987654:TgToken-Secret-94'];
  const captured: string[] = [];
  const capture = async (args: readonly string[]) => {
    const result = await runCli(args, { ...env, RESTIC_PASSWORD: secrets[0] ?? '' });
    captured.push(`${result.stdout}\n${result.stderr}`);
    return result;
  };

  it('in failing and succeeding commands, text, JSON and --debug, and in every message above', async () => {
    const dir = path.dirname(env.UNIFI_BACKUP_STATE_DIR ?? os.tmpdir());
    const config = path.join(dir, 'secret-config.yaml');
    writeFileSync(
      config,
      `restic:\n  repository: rest:http://backup:${secrets[1]}@127.0.0.1:9/repo\n  env:\n` +
        `    AWS_SECRET_ACCESS_KEY: ${secrets[2]}\n`,
      { mode: 0o644 },
    );
    const domain = await domains.create({ writer: false, start: false });
    for (const json of [[], ['--json'], ['--debug']]) {
      const run = await capture([...json, 'run', 'incr', domain.name, '--config', config]);
      expect(run.exitCode).not.toBe(0);
      expect(run.stderr).toContain('holds secrets and is readable by every user');
      await capture([...json, 'run', 'incr', 'ubt-no-such', '--config', config]);
      await capture([
        ...json,
        'notify',
        'send',
        '--url',
        `telegram://${secrets[3]}@telegram?chats=1`,
        '--msg',
        'x',
        '--retries',
        '0',
        '--timeout',
        '2',
      ]);
      await capture([
        ...json,
        'notify',
        'send',
        '--url',
        `ntfy://u:${secrets[1]}@127.0.0.1:9/t?scheme=http`,
        '--msg',
        'x',
        '--retries',
        '0',
      ]);
    }
    expect((await capture(['backup', 'showchain', domain.name])).exitCode).toBe(0);
    const all = [...captured, ...seen.map((s) => s.message)].join('\n');
    for (const secret of secrets) expect(all).not.toContain(secret);
  });
});

describe('locks and state files (docs/security.md)', () => {
  let domain: TestDomain;
  let listing: () => string[];
  let definition: () => Promise<string>;
  beforeAll(async () => {
    domain = await domains.create({ writer: false, start: false });
    listing = () => readdirSync(domain.dir).sort();
    definition = async () => (await virsh('dumpxml', '--inactive', '--domain', domain.name)).stdout;
  });

  it('a lock folder owned by nobody or writable by others is refused; nothing changes', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'ub-badlock-'));
    const before = { files: listing(), xml: await definition() };
    for (const [name, spoil, problem] of [
      [
        'lock folder owned by nobody',
        (dir: string) => {
          chownSync(dir, 65534, 65534);
        },
        'owned by uid 65534',
      ],
      [
        'lock folder mode 0777',
        (dir: string) => {
          chmodSync(dir, 0o777);
        },
        'writable by group or others (mode 777)',
      ],
    ] as const) {
      const lockDir = path.join(root, name.replaceAll(' ', '-'));
      mkdirSync(lockDir, { mode: 0o700 });
      spoil(lockDir);
      const result = await attempt(
        name,
        ['--lock-dir', lockDir, 'backup', 'incr', domain.name],
        1,
        `the lock folder ${lockDir} is ${problem}`,
      );
      expect(result.stderr).toContain(`chown root:root '${lockDir}'; chmod 700 '${lockDir}'`);
      expect(readdirSync(lockDir)).toEqual([]);
    }
    expect({ files: listing(), xml: await definition() }).toEqual(before);
  });

  it('corrupt journals stop backup incr and repair with a clear message; --discard-journal lets the next backup run', async () => {
    const stateDir = env.UNIFI_BACKUP_STATE_DIR ?? '';
    const journal = path.join(stateDir, 'journal', `${encodeURIComponent(domain.name)}.json`);
    mkdirSync(path.dirname(journal), { recursive: true, mode: 0o700 });
    const valid = {
      domain: domain.name,
      verb: 'backup diff',
      pid: 1,
      startedAt: '2026-01-01T00:00:00Z',
      steps: [{ kind: 'purge', files: [path.join(domain.dir, 'not-there.qcow2')] }],
      done: 0,
    };
    const corrupt: [string, () => void, string][] = [
      [
        'journal {}',
        () => {
          writeFileSync(journal, '{}');
        },
        'is not one this version of unifi-backup wrote',
      ],
      [
        'journal truncated',
        () => {
          writeFileSync(journal, JSON.stringify(valid).slice(0, 50));
        },
        'is not valid JSON',
      ],
      [
        'journal with wrong types',
        () => {
          writeFileSync(journal, JSON.stringify({ ...valid, done: '1', steps: {} }));
        },
        'is not one this version of unifi-backup wrote (steps: ',
      ],
      [
        'journal is a symlink',
        () => {
          symlinkSync('/etc/hostname', journal);
        },
        'is a symbolic link; refusing to follow it',
      ],
    ];
    const before = { files: listing(), xml: await definition() };
    for (const [name, plant, problem] of corrupt) {
      plant();
      const held = readFileSync(journal, 'utf8');
      for (const verb of [['backup', 'incr'], ['repair']]) {
        const result = await attempt(`${name}: ${verb.join(' ')}`, [...verb, domain.name], 1, problem);
        expect(result.stderr).toContain(journal);
        expect(result.stderr).not.toMatch(/internal error|TypeError|SyntaxError|\n\s+at /);
        expect(result.stderr).toContain(`unifi-backup repair '${domain.name}' --discard-journal`);
        expect(readFileSync(journal, 'utf8')).toBe(held);
      }
      expect({ files: listing(), xml: await definition() }).toEqual(before);
      const discarded = await runCliOk(['repair', '--discard-journal', domain.name], env);
      expect(discarded.stdout).toContain(`discarded the journal ${journal}, which held`);
      expect(existsSync(journal)).toBe(false);
    }
    expect(readFileSync('/etc/hostname', 'utf8').length).toBeGreaterThan(0);
    await runCliOk(['backup', 'incr', domain.name], env);
    expect(listing().filter((f) => f.includes('.incr-'))).toHaveLength(1);
  });

  it('what backup incr (shut off, then running with -s DIR) creates is private: layers, memory state, dumps (0600)', async () => {
    const memoryDir = mkdtempSync(path.join(os.tmpdir(), 'ub-memory-'));
    const before = new Set(listing());
    // Shut off, qemu-img makes the layer (our umask); running, libvirt makes it and the memory state.
    await runCliOk(['backup', 'incr', domain.name], env);
    await virsh('start', '--domain', domain.name);
    await runCliOk(['backup', 'incr', '-s', memoryDir, domain.name], env);
    const dumps = ['.xml', '-inactive.xml', '-migratable.xml'].map((end) => `${domain.name}${end}`);
    const made = [
      ...listing()
        .filter((f) => !before.has(f) || dumps.includes(f))
        .map((f) => path.join(domain.dir, f)),
      ...readdirSync(memoryDir).map((f) => path.join(memoryDir, f)),
    ];
    expect(made.filter((f) => path.dirname(f) === domain.dir && f.includes('.incr-'))).toHaveLength(2);
    expect(made.filter((f) => dumps.includes(path.basename(f)))).toHaveLength(3);
    expect(readdirSync(memoryDir)).toHaveLength(1);
    const modes = Object.fromEntries(
      made.map((f) => [path.basename(f), (statSync(f).mode & 0o777).toString(8)]),
    );
    expect(modes).toEqual(Object.fromEntries(made.map((f) => [path.basename(f), '600'])));
    expect((statSync(memoryDir).mode & 0o777).toString(8)).toBe('700');
  });
});
