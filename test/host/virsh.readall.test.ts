import { describe, expect, it } from 'vitest';
import type { ProgramRequest, ProgramResult } from '../../src/host/runner.js';
import { ProgramTimeoutError } from '../../src/host/runner.js';
import { Virsh } from '../../src/host/virsh.js';

const uuids = ['7073dfbe-8e20-4afe-9722-5490b8dcf432', '5bc753a7-447d-4ffc-9b73-bc097d9f67da'];
const xml = (name: string, flavour: string) =>
  `<domain type='qemu'>\n  <name>${name}</name> <!-- ${flavour} -->\n  <devices>${disk('vda')}${disk('vdb')}${disk('weird dev')}</devices>\n</domain>\n`;
const disk = (target: string) =>
  `<disk type='file' device='disk'><source file='/d/${target}.qcow2'/><target dev='${target}'/></disk>`;
interface FakeDomain {
  readonly name: string;
  readonly state: string;
  /** Default true; the shut-off domains of these tests have a managed save image. */
  readonly persistent?: boolean;
  /** The state the list filters see, when it changed before domstate was asked. */
  readonly listed?: string;
}

/** What `virsh list --all --uuid FLAG` prints for each filter the batched read uses. */
const filters: Record<string, (d: FakeDomain) => boolean> = {
  '--persistent': (d) => d.persistent !== false,
  '--transient': (d) => d.persistent === false,
  '--with-managed-save': (d) => d.state === 'shut off',
  '--without-managed-save': (d) => d.state !== 'shut off',
  '--state-shutoff': (d) => (d.listed ?? d.state) === 'shut off',
};

/**
 * A stand-in for virsh (pure parsing is under test): answers `list` with the given lines, and a
 * batched argument with each command's output after its echoed marker, as virsh --quiet does (no
 * newline after an echo), leaving out what `fail` names.
 */
function fakeVirsh(
  listing: string,
  domains: Record<string, FakeDomain>,
  fail = '',
  jobs: Record<string, string> = {},
) {
  const seen: (readonly string[])[] = [];
  const runner = (request: ProgramRequest): Promise<ProgramResult> => {
    seen.push(request.argv);
    const args = request.argv.slice(4);
    let stdout = '';
    if (args[0] === 'list') stdout = listing;
    else
      for (const command of (args[0] ?? '').split('; ')) {
        const words = command.split(' ');
        const uuid = words[0] === 'blockjob' ? (words[2] ?? '') : (words.at(-1) ?? '');
        const domain = domains[uuid];
        if (words[0] === 'echo') stdout += words[1] ?? '';
        else if (command === fail) continue;
        else if (words[0] === 'list') {
          const filter = filters[words[3] ?? ''];
          for (const [id, d] of Object.entries(domains)) if (filter?.(d) === true) stdout += `${id}\n`;
          stdout += '\n';
        } else if (words[0] === 'blockjob') stdout += jobs[`${words[2] ?? ''} ${words[4] ?? ''}`] ?? '';
        else if (domain === undefined) continue;
        else if (words[0] === 'domstate') stdout += `${domain.state}\n\n`;
        else stdout += xml(domain.name, words[1] === '--inactive' ? 'inactive' : 'live');
      }
    return Promise.resolve({ argv: request.argv, exitCode: 0, stdout, stderr: '' });
  };
  return { virsh: new Virsh(runner, 'qemu:///system'), seen, runner };
}

describe('Virsh.readAll: every domain in one batched run', () => {
  const [a = '', b = ''] = uuids;
  const domains = {
    [a]: { name: 'web 1; $(x)', state: 'running' },
    [b]: { name: 'db', state: 'shut off' },
  };

  it('reads run state and the definitions of each listed domain, by UUID, in list order', async () => {
    const { virsh, seen } = fakeVirsh(`${a} web 1; $(x)\n${b} db\n`, domains);
    const listed = await virsh.readAll();
    expect(listed.map((d) => d.name)).toEqual(['web 1; $(x)', 'db']);
    expect(listed[0]?.definitions?.info.runState).toBe('running');
    expect(listed[0]?.definitions?.live).toBe(xml('web 1; $(x)', 'live'));
    expect(listed[0]?.definitions?.inactive).toBe(xml('web 1; $(x)', 'inactive'));
    expect(listed[1]?.definitions?.info).toEqual({
      name: 'db',
      uuid: b,
      runState: 'shut off',
      persistent: true,
      managedSave: true,
    });
    // Shut off: its persistent definition is its only one, read once.
    expect(listed[1]?.definitions?.inactive).toBe(xml('db', 'live'));
    expect(seen).toHaveLength(3);
    // Names never reach virsh's command language: only fixed words, markers and UUIDs.
    const batch = seen[2]?.at(-1) ?? '';
    expect(batch).not.toContain('web');
    for (const command of batch.split('; '))
      expect(command).toMatch(
        /^(echo @@unifi-backup-[0-9a-f]{16}-\d+-\d@@|(domstate|dumpxml( --inactive)?) --domain [0-9a-f-]{36})$/,
      );
    expect(batch).not.toContain(`dumpxml --inactive --domain ${b}`);
  });

  it('a transient domain has one definition, read once', async () => {
    const { virsh } = fakeVirsh(`${a} web\n`, { [a]: { name: 'web', state: 'running', persistent: false } });
    const [web] = await virsh.readAll();
    expect(web?.definitions?.info.persistent).toBe(false);
    expect(web?.definitions?.inactive).toBe(xml('web', 'live'));
  });

  it('leaves a domain whose read failed, or whose UUID is not one, to be read alone', async () => {
    const { virsh } = fakeVirsh(
      `${a} web 1; $(x)\n${b} db\nnot-a-uuid odd\n`,
      domains,
      `dumpxml --domain ${b}`,
    );
    const listed = await virsh.readAll();
    expect(listed.map((d) => d.name)).toEqual(['web 1; $(x)', 'db', 'odd']);
    expect(listed[0]?.definitions).toBeDefined();
    expect(listed[1]?.definitions).toBeUndefined();
    expect(listed[2]?.definitions).toBeUndefined();
  });

  it('a domain whose list filters disagree, or that started after it was listed shut off, is read alone', async () => {
    const listing = `${a} web 1; $(x)\n${b} db\n`;
    const { virsh } = fakeVirsh(listing, domains, `list --all --uuid --transient`);
    const listed = await virsh.readAll();
    // Persistent (in one list of the pair): still read in the batch.
    expect(listed.every((d) => d.definitions !== undefined)).toBe(true);
    const noPersistent = fakeVirsh(listing, domains, `list --all --uuid --persistent`);
    expect((await noPersistent.virsh.readAll()).every((d) => d.definitions === undefined)).toBe(true);
    // Listed shut off, running by domstate: its persistent definition was not read.
    const racing = fakeVirsh(listing, {
      ...domains,
      [b]: { name: 'db', state: 'running', listed: 'shut off' },
    });
    const [web, db] = await racing.virsh.readAll();
    expect(web?.definitions).toBeDefined();
    expect(db?.definitions).toBeUndefined();
  });

  it('reads many domains in runs of at most 25', async () => {
    const many = Array.from(
      { length: 250 },
      (_, i) => `${String(i).padStart(8, '0')}-0000-0000-0000-000000000000`,
    );
    const { virsh, seen } = fakeVirsh(
      many.map((u, i) => `${u} d${i}`).join('\n'),
      Object.fromEntries(many.map((u, i) => [u, { name: `d${i}`, state: 'shut off' }])),
    );
    const listed = await virsh.readAll();
    expect(listed).toHaveLength(250);
    expect(listed.every((d, i) => d.definitions?.info.name === `d${i}`)).toBe(true);
    expect(seen).toHaveLength(12);
  });

  it('each batch arrives on its own; a run that times out fails the whole read', async () => {
    const many = Array.from(
      { length: 30 },
      (_, i) => `${String(i).padStart(8, '0')}-0000-0000-0000-000000000000`,
    );
    const { virsh, seen, runner } = fakeVirsh(
      many.map((u, i) => `${u} d${i}`).join('\n'),
      Object.fromEntries(many.map((u, i) => [u, { name: `d${i}`, state: 'shut off' }])),
    );
    const pending = await virsh.readAllInBatches();
    expect((await pending[0]?.definitions)?.info.name).toBe('d0');
    expect((await pending[29]?.definitions)?.info.name).toBe('d29');
    expect(seen).toHaveLength(4);
    const failing = new Virsh((request) => {
      const line = request.argv.at(-1) ?? '';
      return line.includes(many[29] ?? '') && line.includes('dumpxml')
        ? Promise.reject(new ProgramTimeoutError(request.argv, 1000))
        : runner(request);
    }, 'qemu:///system');
    await expect(failing.readAll()).rejects.toBeInstanceOf(ProgramTimeoutError);
  });

  it('with blockJobs: every disk of each running domain in one more run, plain target names only', async () => {
    const { virsh, seen } = fakeVirsh(`${a} web 1; $(x)\n${b} db\n`, domains, '', {
      [`${a} vda`]: ' type=Block Pull\n bandwidth=0\n cur=1\n end=4\n',
    });
    const listed = await virsh.readAll({ blockJobs: true });
    expect(seen).toHaveLength(4);
    const jobs = listed[0]?.definitions?.blockJobs;
    expect(jobs?.get('vda')).toEqual({ type: 'Block Pull', cur: 1, end: 4, ready: false });
    expect(jobs?.has('vdb')).toBe(true);
    expect(jobs?.get('vdb')).toBeUndefined();
    // Not a plain word: left out of the batch, for status to ask about alone.
    expect(jobs?.has('weird dev')).toBe(false);
    // Shut off: no block jobs asked.
    expect(listed[1]?.definitions?.blockJobs).toBeUndefined();
    expect(seen[3]?.at(-1)).not.toContain(b);
  });
});
