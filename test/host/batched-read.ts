import { expect } from 'vitest';
import { programRunner } from '../../src/host/runner.js';
import { Virsh } from '../../src/host/virsh.js';
import { libvirtUri } from '../rig/rig-paths.js';

/**
 * The batched read of `all` (list filters, domstate, the definitions a domain can differ in) says
 * of each named domain what `dominfo` and `dumpxml` say one at a time: a shut-off domain's one
 * definition is its persistent one, a transient domain's its live one.
 */
export async function expectBatchedReadAgrees(names: readonly string[]): Promise<void> {
  const virsh = new Virsh(programRunner, libvirtUri);
  const listed = (await virsh.readAll()).filter((d) => names.includes(d.name));
  expect(listed.map((d) => d.name).sort()).toEqual([...names].sort());
  for (const { name, definitions } of listed) {
    const info = await virsh.info(name);
    const live = await virsh.dumpXml(name);
    expect(definitions).toEqual({
      info,
      live,
      inactive: info.persistent ? await virsh.dumpXml(name, 'inactive') : live,
    });
  }
}

/** What a call gives, or the error it throws (compared by class and message). */
export async function outcome(call: () => Promise<unknown>): Promise<unknown> {
  try {
    return await call();
  } catch (error) {
    return { error: (error as Error).constructor.name, message: (error as Error).message };
  }
}
