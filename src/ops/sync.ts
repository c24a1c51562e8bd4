import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { selectDisks } from '../chain/eligibility.js';
import { refuseDeviceDisks } from '../chain/blockdisk.js';
import type { Disk } from '../chain/model.js';
import { frozenLayers } from '../chain/model.js';
import type {
  ReplicaDisk,
  ReplicaFile,
  MakeStep,
  ReplicaPlan,
  ReplicaState,
  SourceDisk,
  SyncMode,
} from '../chain/replica.js';
import {
  describeReplicaStep,
  planReplica,
  replicaFiles,
  replicaFormats,
  replicaTops,
} from '../chain/replica.js';
import { UserError } from '../errors.js';
import { fileId } from '../host/fileid.js';
import { makeImageFolder } from '../host/imagefolder.js';
import { interfaceCount, replicaXml } from '../host/replicaxml.js';
import { NoSuchDomainError } from '../host/virsh.js';
import { lockDomain } from '../lock/lock.js';
import type { OpsContext } from './context.js';
import { faultAfterStep } from './fault.js';
import { refuseInMaintenance } from './maintenance-record.js';
import { recoverInterrupted } from './recover.js';
import { fileReferences, quoted, useOf } from './references.js';
import {
  encodeName,
  readAllReplicaStates,
  readReplicaState,
  stateFile,
  writeReplicaState,
} from './replicastate.js';
import { readDomainState } from './state.js';
import { fsyncFolder, writeStateFile } from '../state/write.js';

export interface SyncRequest {
  readonly mode: SyncMode;
  readonly target: string;
  /** The replica domain's name; default `<domain>-replica`, or the name it was given before. */
  readonly as?: string;
  readonly define: boolean;
  readonly exclude: readonly string[];
  /** Run even while the domain is in maintenance. */
  readonly force?: boolean;
}

export interface SyncResult {
  readonly domain: string;
  readonly mode: SyncMode;
  readonly replica: string;
  readonly target: string;
  readonly dryRun: boolean;
  readonly steps: readonly string[];
  readonly notes: readonly string[];
  /** Bytes written into DIR by copies and conversions (not by merges inside DIR). */
  readonly bytesCopied: number;
  /** Per disk, the replica's chain in DIR, base first. */
  readonly disks: readonly { target: string; files: readonly string[] }[];
  /** The replica's definition, ready for `virsh define`. */
  readonly definition: string;
  /** True when the replica domain is defined in libvirt (now or from an earlier --define). */
  readonly defined: boolean;
  readonly durationMs: number;
}

function tempPrefix(domain: string): string {
  return `.ub-tmp.${encodeName(domain)}.`;
}

function randomMac(): string {
  const bytes = [...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0'));
  return ['52', '54', '00', ...bytes].join(':');
}

function sourceDisks(disks: readonly Disk[], domain: string): SourceDisk[] {
  return disks.map((disk) => {
    const frozen = [...frozenLayers(disk)].reverse();
    if (frozen.length === 0)
      throw new UserError(
        `disk ${disk.target} of domain '${domain}' has no frozen layer yet, so there is nothing to sync. ` +
          `Run 'unifi-backup backup incr ${domain}' first.`,
      );
    return {
      target: disk.target,
      frozen: frozen.map((layer) => {
        const stat = statSync(layer.path);
        return { path: layer.path, format: layer.format, size: stat.size, mtimeMs: stat.mtimeMs };
      }),
    };
  });
}

/** Copies `from` to `to` byte for byte, returning the sha256 of what was read. */
async function copyFile(from: string, to: string, onBytes: (n: number) => void): Promise<string> {
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
  await pipeline(createReadStream(from), tap, createWriteStream(to, { mode: 0o600, flush: true }));
  return hash.digest('hex');
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

interface Running {
  readonly ctx: OpsContext;
  readonly domain: string;
  readonly dir: string;
  bytesCopied: number;
}

/** Makes one file of the plan under a temporary name; returns the file record's sha256 if any. */
async function makeFile(run: Running, step: MakeStep, temp: string): Promise<string | undefined> {
  const progress = (percent: number) => {
    run.ctx.progress({ domain: run.domain, target: step.target, job: `sync ${step.kind}`, percent });
  };
  switch (step.kind) {
    case 'convert': {
      await run.ctx.host.qemuImg.convert(step.from, temp, progress);
      run.bytesCopied += statSync(temp).blocks * 512;
      return undefined;
    }
    case 'copy': {
      let done = 0;
      const sha256 = await copyFile(step.from.path, temp, (n) => {
        done += n;
        progress(Math.floor((done / Math.max(step.from.size, 1)) * 100));
      });
      const size = statSync(temp).size;
      const after = statSync(step.from.path);
      if (size !== step.from.size || after.size !== step.from.size || after.mtimeMs !== step.from.mtimeMs)
        throw new UserError(
          `disk ${step.target} of domain '${run.domain}': ${step.from.path} changed while it was copied to ${run.dir}. ` +
            `A frozen layer should never change: check nothing else writes it, then sync again.`,
        );
      if ((await sha256Of(temp)) !== sha256)
        throw new UserError(
          `disk ${step.target} of domain '${run.domain}': the copy of ${step.from.path} in ${run.dir} does not match ` +
            `its source (checksum). Check the storage of ${run.dir}, then sync again.`,
        );
      run.bytesCopied += size;
      if (step.backing)
        await run.ctx.host.qemuImg.rebaseUnsafe(
          temp,
          path.join(run.dir, step.backing.file),
          step.backing.format,
        );
      return sha256;
    }
  }
}

/** The replica domain, if libvirt knows it: only ours (by UUID) may be redefined, and never while it runs. */
async function replicaDomain(
  ctx: OpsContext,
  name: string,
  previous: ReplicaState | undefined,
  domain: string,
): Promise<boolean> {
  let info;
  try {
    info = await ctx.host.virsh.info(name);
  } catch (error) {
    if (error instanceof NoSuchDomainError) return false;
    throw error;
  }
  if (info.uuid !== previous?.uuid)
    throw new UserError(
      `a domain named '${name}' exists and is not the replica of '${domain}' this folder holds. ` +
        `Give the replica another name with --as NAME.`,
    );
  if (info.runState !== 'shut off')
    throw new UserError(
      `the replica '${name}' of domain '${domain}' is ${info.runState}; syncing would change files it uses. ` +
        `Shut it down (virsh shutdown '${name}'), then sync again.`,
    );
  return true;
}

function removeLeftovers(dir: string, domain: string): void {
  for (const name of readdirSync(dir))
    if (name.startsWith(tempPrefix(domain))) rmSync(path.join(dir, name), { force: true });
}

/** Deletes files the replica no longer uses, keeping any some domain still references (by identity). */
async function prune(run: Running, files: readonly string[]): Promise<{ left: string[]; notes: string[] }> {
  if (files.length === 0) return { left: [], notes: [] };
  const references = await fileReferences(run.ctx.host);
  const left: string[] = [];
  const notes: string[] = [];
  for (const file of files) {
    const full = path.join(run.dir, file);
    if (!existsSync(full)) continue;
    const use = useOf(references, await fileId(full), full);
    if (use.kind === 'unused') {
      rmSync(full, { force: true });
      continue;
    }
    left.push(file);
    notes.push(
      `kept ${full}: ${use.kind === 'used' ? `domain ${quoted(use.by)} uses it` : `it may still be in use: ${use.why}`}`,
    );
  }
  return { left, notes };
}

function diskReport(disks: readonly ReplicaDisk[]): { target: string; files: string[] }[] {
  return disks.map((d) => ({ target: d.target, files: d.files.map((f) => f.file) }));
}

/** `sync full|diff|inplace` of one domain into DIR, under the domain's lock. */
export async function syncDomain(ctx: OpsContext, domain: string, request: SyncRequest): Promise<SyncResult> {
  const started = Date.now();
  const dir = path.resolve(request.target);
  const lock = ctx.dryRun ? undefined : await lockDomain(ctx.lockDir, domain, `sync ${request.mode}`);
  try {
    if (request.force !== true) refuseInMaintenance(ctx.stateDir, domain, `sync ${request.mode}`);
    if (!ctx.dryRun)
      for (const action of await recoverInterrupted(ctx, domain)) ctx.log(`${domain}: ${action}`);
    const state = await readDomainState(ctx.host, domain);
    const { included, excluded } = selectDisks(state, request.exclude);
    refuseDeviceDisks(
      state,
      included,
      'sync',
      (disk) =>
        `Leave the disk out with --exclude ${disk.target} and copy the device to the replica another way.`,
    );
    if (!ctx.dryRun) await makeImageFolder(dir);
    const previous = readReplicaState(dir, state.name);
    if (previous && previous.mode !== request.mode)
      throw new UserError(
        `${dir} holds a '${previous.mode}' replica of domain '${state.name}' (${stateFile(dir, state.name)}); ` +
          `a '${request.mode}' sync cannot update it. Run 'sync ${previous.mode}', or sync into another folder.`,
      );
    const replica = request.as ?? previous?.replica ?? `${state.name}-replica`;
    if (
      previous &&
      replica !== previous.replica &&
      (await replicaDomain(ctx, previous.replica, previous, state.name))
    )
      throw new UserError(
        `the replica of '${state.name}' in ${dir} is defined as '${previous.replica}'. Undefine it first ` +
          `(virsh undefine '${previous.replica}') or sync without --as.`,
      );
    const defined = await replicaDomain(ctx, replica, previous, state.name);
    const others = readAllReplicaStates(dir).filter((s) => s.domain !== state.name);
    const plan: ReplicaPlan = planReplica({
      mode: request.mode,
      disks: sourceDisks(included, state.name),
      previous,
      taken: new Set(readdirSafe(dir)),
      changed: changedFiles(dir, previous),
      claimed: new Set(others.flatMap((s) => s.disks.flatMap((d) => d.files.map((f) => f.file)))),
    });
    const sourceXml = await ctx.host.virsh.dumpXml(state.name, state.persistent ? 'inactive' : 'live');
    const identity = {
      uuid: previous?.uuid ?? randomUUID(),
      macs: Array.from({ length: interfaceCount(sourceXml) }, (_, i) => previous?.macs[i] ?? randomMac()),
    };
    const definitionOf = (disks: readonly ReplicaDisk[]) =>
      replicaXml(sourceXml, {
        name: replica,
        ...identity,
        sources: new Map([...replicaTops(disks)].map(([t, f]) => [t, path.join(dir, f)])),
        formats: replicaFormats(disks),
        dropTargets: new Set(excluded.map((d) => d.target)),
        logDir: dir,
      });
    const definitionFile = path.join(dir, `${encodeName(replica)}.xml`);
    const run: Running = { ctx, domain: state.name, dir, bytesCopied: 0 };
    const result = (
      disks: readonly ReplicaDisk[],
      notes: readonly string[],
      isDefined: boolean,
    ): SyncResult => ({
      domain: state.name,
      mode: request.mode,
      replica,
      target: dir,
      dryRun: ctx.dryRun,
      steps: [...plan.copies, ...plan.commits].map(describeReplicaStep),
      notes: [...plan.notes, ...notes],
      bytesCopied: run.bytesCopied,
      disks: diskReport(disks),
      definition: definitionFile,
      defined: isDefined,
      durationMs: Date.now() - started,
    });
    if (ctx.dryRun) return result(plan.final, [], defined);

    removeLeftovers(dir, state.name);
    // Sync keeps no journal (the state file is its commit point), but counts its steps the same way
    // so a test can kill it after each one.
    let stepsDone = 0;
    const stepDone = () => {
      stepsDone += 1;
      faultAfterStep(stepsDone);
    };
    const made = new Map<string, string | undefined>();
    for (const step of plan.copies) {
      const temp = path.join(dir, `${tempPrefix(state.name)}${step.file}`);
      made.set(step.file, await makeFile(run, step, temp));
      stepDone();
    }
    // Recorded before the new files take their names: should this run die before its state names
    // them, the next sync deletes them as files the replica retired, instead of leaving them behind.
    // What every state file of this run says about the replica, besides its disks.
    const header = () => ({
      version: 1 as const,
      domain: state.name,
      mode: request.mode,
      replica,
      ...identity,
      updated: ctx.now().toISOString(),
    });
    if (plan.copies.length > 0) {
      writeReplicaState(dir, {
        ...(previous ?? { ...header(), disks: [] }),
        retired: [...new Set([...(previous?.retired ?? []), ...plan.copies.map((step) => step.file)])],
      });
      stepDone();
    }
    // Every new file is complete: only now do they take their names (new names, so the previous
    // replica's files are untouched until the state file says they are no longer used).
    for (const step of plan.copies)
      renameSync(path.join(dir, `${tempPrefix(state.name)}${step.file}`), path.join(dir, step.file));
    fsyncFolder(dir);
    stepDone();
    const withSums = (disks: readonly ReplicaDisk[]): ReplicaDisk[] =>
      disks.map((d) => ({
        ...d,
        files: d.files.map((f): ReplicaFile => {
          const sha256 = made.get(f.file);
          return sha256 === undefined ? f : { ...f, sha256 };
        }),
      }));
    const define = request.define || defined;
    const commitState = async (unstamped: readonly ReplicaDisk[], retired: readonly string[]) => {
      const disks = stamped(dir, unstamped);
      writeReplicaState(dir, { ...header(), disks, retired });
      const xml = definitionOf(disks);
      writeStateFile(definitionFile, xml);
      if (define) await ctx.host.virsh.define(xml, replica);
      stepDone();
    };
    let disks = withSums(plan.disks);
    await commitState(disks, plan.retired);
    let retired = plan.retired;
    if (plan.commits.length > 0) {
      for (const step of plan.commits) {
        await ctx.host.qemuImg.commitKeepingTop(
          path.join(dir, step.top),
          path.join(dir, step.base),
          (percent) => {
            ctx.progress({ domain: state.name, target: step.target, job: 'sync merge', percent });
          },
        );
        stepDone();
      }
      const final = withSums(plan.final);
      const merged = replicaFiles(disks).filter((f) => !replicaFiles(final).includes(f));
      retired = [...retired, ...merged];
      disks = final;
      await commitState(disks, retired);
    }
    const pruned = await prune(run, retired);
    stepDone();
    if (pruned.left.length !== retired.length) await commitState(disks, pruned.left);
    return result(disks, pruned.notes, define);
  } finally {
    lock?.release();
  }
}

/** Files of the previous replica that changed since the sync that made them (a boot writes its top). */
function changedFiles(dir: string, previous: ReplicaState | undefined): Set<string> {
  const changed = new Set<string>();
  for (const file of (previous?.disks ?? []).flatMap((d) => d.files)) {
    let stat;
    try {
      stat = statSync(path.join(dir, file.file));
    } catch {
      changed.add(file.file);
      continue;
    }
    if (file.stamp && (stat.size !== file.stamp.size || stat.mtimeMs !== file.stamp.mtimeMs))
      changed.add(file.file);
  }
  return changed;
}

function stamped(dir: string, disks: readonly ReplicaDisk[]): ReplicaDisk[] {
  return disks.map((d) => ({
    ...d,
    files: d.files.map((f) => {
      const stat = statSync(path.join(dir, f.file));
      return { ...f, stamp: { size: stat.size, mtimeMs: stat.mtimeMs } };
    }),
  }));
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
