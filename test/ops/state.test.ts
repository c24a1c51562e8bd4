import { describe, expect, it } from 'vitest';
import type { Host } from '../../src/host/host.js';
import { QemuImg } from '../../src/host/qemuimg.js';
import type { ProgramRequest, ProgramResult } from '../../src/host/runner.js';
import type { DomainDefinitions } from '../../src/host/virsh.js';
import { Virsh } from '../../src/host/virsh.js';
import { readDomainStateWithDefinitions } from '../../src/ops/state.js';

const dbUuid = '5bc753a7-447d-4ffc-9b73-bc097d9f67da';
const webUuid = '7073dfbe-8e20-4afe-9722-5490b8dcf432';
const xml = (name: string, uuid: string) =>
  `<domain type='qemu'>\n  <name>${name}</name>\n  <uuid>${uuid}</uuid>\n  <devices/>\n</domain>\n`;
const dominfo =
  `Id:             -\nName:           db\nUUID:           ${dbUuid}\nState:          shut off\n` +
  `Persistent:     yes\nManaged save:   no\n\n`;

/** A stand-in for virsh that knows one shut-off domain, `db`, and answers batched reads of it by name. */
function fakeHost(): { host: Host; seen: (readonly string[])[] } {
  const seen: (readonly string[])[] = [];
  const runner = (request: ProgramRequest): Promise<ProgramResult> => {
    seen.push(request.argv);
    let stdout = '';
    for (const command of (request.argv.at(-1) ?? '').split('; ')) {
      const words = command.split(' ');
      if (words[0] === 'echo') stdout += words[1] ?? '';
      else if (words[0] === 'dominfo') stdout += dominfo;
      else if (words[0] === 'dumpxml') stdout += xml('db', dbUuid);
    }
    return Promise.resolve({ argv: request.argv, exitCode: 0, stdout, stderr: '' });
  };
  return {
    host: { virsh: new Virsh(runner, 'qemu:///system'), qemuImg: new QemuImg(runner), runner },
    seen,
  };
}

const prefetched = (live: string): DomainDefinitions => ({
  info: { name: 'db', uuid: dbUuid, runState: 'shut off', persistent: true, managedSave: false },
  live,
  inactive: live,
});

describe('readDomainStateWithDefinitions with a batched read', () => {
  it('uses the definitions read in the batch, asking virsh nothing', async () => {
    const { host, seen } = fakeHost();
    const { state } = await readDomainStateWithDefinitions(host, 'db', undefined, {
      prefetched: prefetched(xml('db', dbUuid)),
    });
    expect(state.name).toBe('db');
    expect(seen).toHaveLength(0);
  });

  it('reads the domain again by name when the definition read by UUID names another domain', async () => {
    const { host, seen } = fakeHost();
    const { state, definitions } = await readDomainStateWithDefinitions(host, 'db', undefined, {
      prefetched: prefetched(xml('web', webUuid)),
    });
    expect(state).toMatchObject({ name: 'db', uuid: dbUuid, runState: 'shut off' });
    expect(definitions.live).toBe(xml('db', dbUuid));
    expect(seen).toHaveLength(1);
    expect(seen[0]?.at(-1)).toContain('dumpxml --domain db');
  });
});
