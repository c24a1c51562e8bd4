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
import type { Disk, DomainState } from '../chain/model.js';
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
import { replicaFileName } from '../naming.js';
import type { OpsContext } from './context.js';
import { faultAfterStep } from './fault.js';
import { domainOperation } from './frame.js';
import type { PlanReport } from './outcome.js';
import { fileReferences, quoted, useOf } from './references.js';
import { readAllReplicaStates, readReplicaState, stateFile, writeReplicaState } from './replicastate.js';
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

export interface SyncResult extends PlanReport {
  readonly mode: SyncMode;
  readonly replica: string;
  readonly target: string;
  /** Bytes written into DIR by copies and conversions (not by merges inside DIR). */
  readonly bytesCopied: number;
  /** Per disk, the replica's chain in DIR, base first. */
  readonly disks: readonly { target: string; files: readonly string[] }[];
  /** The replica's definition, ready for `virsh define`. */
  readonly definition: string;
  /** True when the replica domain is defined in libvirt (now or from an earlier --define). */
  readonly defined: boolean;
}

function tempPrefix(domain: string): string {
  return `.ub-tmp.${replicaFileName(domain)}.`;
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

/** Whether libvirt knows the replica domain: only ours (by UUID) may be redefined, and never while it runs. */
async function replicaDefined(
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

/** What a sync decided before it changes anything. */
interface SyncSetup {
  readonly state: DomainState;
  readonly request: SyncRequest;
  readonly replica: string;
  readonly previous: ReplicaState | undefined;
  /** Whether libvirt knew the replica domain before this sync. */
  readonly defined: boolean;
  readonly excluded: readonly Disk[];
  readonly plan: ReplicaPlan;
  readonly sourceXml: string;
  readonly identity: { readonly uuid: string; readonly macs: readonly string[] };
  readonly definitionFile: string;
}

/** A sync in progress: what it copied, which steps are done, and whether the replica is to be defined. */
interface Syncing extends Running {
  readonly setup: SyncSetup;
  readonly define: boolean;
  /** sha256 of each file this sync made, by file name (undefined for a conversion). */
  readonly made: Map<string, string | undefined>;
  stepsDone: number;
}

/** `sync full|diff|inplace` of one domain into DIR, under the domain's lock. */
export async function syncDomain(ctx: OpsContext, domain: string, request: SyncRequest): Promise<SyncResult> {
  const started = Date.now();
  const dir = path.resolve(request.target);
  const frame = { verb: `sync ${request.mode}`, refuseInMaintenance: request.force !== true };
  return domainOperation(ctx, domain, frame, async () => {
    const setup = await planSync(ctx, domain, request, dir);
    const run: Syncing = {
      ctx,
      domain: setup.state.name,
      dir,
      bytesCopied: 0,
      setup,
      define: request.define || setup.defined,
      made: new Map(),
      stepsDone: 0,
    };
    if (ctx.dryRun) return syncResult(run, setup.plan.final, [], setup.defined, started);
    removeLeftovers(dir, setup.state.name);
    await makeNewFiles(run);
    const { disks, retired } = await commitAndMerge(run);
    const pruned = await prune(run, retired);
    stepDone(run);
    if (pruned.left.length !== retired.length) await commitState(run, disks, pruned.left);
    return syncResult(run, disks, pruned.notes, run.define, started);
  });
}

/** Reads the domain and what DIR holds, refuses what cannot be synced, and plans the replica. */
async function planSync(
  ctx: OpsContext,
  domain: string,
  request: SyncRequest,
  dir: string,
): Promise<SyncSetup> {
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
  refuseModeChange(dir, state.name, previous, request.mode);
  const replica = request.as ?? previous?.replica ?? `${state.name}-replica`;
  await refuseRename(ctx, dir, state.name, previous, replica);
  const defined = await replicaDefined(ctx, replica, previous, state.name);
  const others = readAllReplicaStates(dir).filter((s) => s.domain !== state.name);
  const plan = planReplica({
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
  const definitionFile = path.join(dir, `${replicaFileName(replica)}.xml`);
  return { state, request, replica, previous, defined, excluded, plan, sourceXml, identity, definitionFile };
}

function refuseModeChange(
  dir: string,
  domain: string,
  previous: ReplicaState | undefined,
  mode: SyncMode,
): void {
  if (previous && previous.mode !== mode)
    throw new UserError(
      `${dir} holds a '${previous.mode}' replica of domain '${domain}' (${stateFile(dir, domain)}); ` +
        `a '${mode}' sync cannot update it. Run 'sync ${previous.mode}', or sync into another folder.`,
    );
}

async function refuseRename(
  ctx: OpsContext,
  dir: string,
  domain: string,
  previous: ReplicaState | undefined,
  replica: string,
): Promise<void> {
  if (
    previous &&
    replica !== previous.replica &&
    (await replicaDefined(ctx, previous.replica, previous, domain))
  )
    throw new UserError(
      `the replica of '${domain}' in ${dir} is defined as '${previous.replica}'. Undefine it first ` +
        `(virsh undefine '${previous.replica}') or sync without --as.`,
    );
}

function syncResult(
  run: Syncing,
  disks: readonly ReplicaDisk[],
  notes: readonly string[],
  defined: boolean,
  started: number,
): SyncResult {
  const { setup } = run;
  return {
    domain: setup.state.name,
    mode: setup.request.mode,
    replica: setup.replica,
    target: run.dir,
    dryRun: run.ctx.dryRun,
    steps: [...setup.plan.copies, ...setup.plan.commits].map(describeReplicaStep),
    notes: [...setup.plan.notes, ...notes],
    bytesCopied: run.bytesCopied,
    disks: diskReport(disks),
    definition: setup.definitionFile,
    defined,
    durationMs: Date.now() - started,
  };
}

/**
 * Sync keeps no journal (the state file is its commit point), but counts its steps the same way so a
 * test can kill it after each one.
 */
function stepDone(run: Syncing): void {
  run.stepsDone += 1;
  faultAfterStep(run.stepsDone);
}

/** What every state file of this run says about the replica, besides its disks. */
function stateHeader(run: Syncing): Omit<ReplicaState, 'disks' | 'retired'> {
  const { setup } = run;
  return {
    version: 1 as const,
    domain: setup.state.name,
    mode: setup.request.mode,
    replica: setup.replica,
    ...setup.identity,
    updated: run.ctx.now().toISOString(),
  };
}

/** Makes every new file under a temporary name, then gives them their names. */
async function makeNewFiles(run: Syncing): Promise<void> {
  const { plan, previous, state } = run.setup;
  for (const step of plan.copies) {
    const temp = path.join(run.dir, `${tempPrefix(state.name)}${step.file}`);
    run.made.set(step.file, await makeFile(run, step, temp));
    stepDone(run);
  }
  // Recorded before the new files take their names: should this run die before its state names
  // them, the next sync deletes them as files the replica retired, instead of leaving them behind.
  if (plan.copies.length > 0) {
    writeReplicaState(run.dir, {
      ...(previous ?? { ...stateHeader(run), disks: [] }),
      retired: [...new Set([...(previous?.retired ?? []), ...plan.copies.map((step) => step.file)])],
    });
    stepDone(run);
  }
  // Every new file is complete: only now do they take their names (new names, so the previous
  // replica's files are untouched until the state file says they are no longer used).
  for (const step of plan.copies)
    renameSync(path.join(run.dir, `${tempPrefix(state.name)}${step.file}`), path.join(run.dir, step.file));
  fsyncFolder(run.dir);
  stepDone(run);
}

function withSums(run: Syncing, disks: readonly ReplicaDisk[]): ReplicaDisk[] {
  return disks.map((d) => ({
    ...d,
    files: d.files.map((f): ReplicaFile => {
      const sha256 = run.made.get(f.file);
      return sha256 === undefined ? f : { ...f, sha256 };
    }),
  }));
}

/** Writes the state file and the definition (and defines the replica) for these disks. */
async function commitState(
  run: Syncing,
  unstamped: readonly ReplicaDisk[],
  retired: readonly string[],
): Promise<void> {
  const { setup } = run;
  const disks = stamped(run.dir, unstamped);
  writeReplicaState(run.dir, { ...stateHeader(run), disks, retired });
  const xml = replicaXml(setup.sourceXml, {
    name: setup.replica,
    ...setup.identity,
    sources: new Map([...replicaTops(disks)].map(([t, f]) => [t, path.join(run.dir, f)])),
    formats: replicaFormats(disks),
    dropTargets: new Set(setup.excluded.map((d) => d.target)),
    logDir: run.dir,
  });
  writeStateFile(setup.definitionFile, xml);
  if (run.define) await run.ctx.host.virsh.define(xml, setup.replica);
  stepDone(run);
}

/** Commits the new files, then merges what the plan merges and commits again; returns what the replica is now. */
async function commitAndMerge(run: Syncing): Promise<{ disks: ReplicaDisk[]; retired: string[] }> {
  const { plan, state } = run.setup;
  const disks = withSums(run, plan.disks);
  await commitState(run, disks, plan.retired);
  if (plan.commits.length === 0) return { disks, retired: [...plan.retired] };
  for (const step of plan.commits) {
    await run.ctx.host.qemuImg.commitKeepingTop(
      path.join(run.dir, step.top),
      path.join(run.dir, step.base),
      (percent) => {
        run.ctx.progress({ domain: state.name, target: step.target, job: 'sync merge', percent });
      },
    );
    stepDone(run);
  }
  const final = withSums(run, plan.final);
  const merged = replicaFiles(disks).filter((f) => !replicaFiles(final).includes(f));
  const retired = [...plan.retired, ...merged];
  await commitState(run, final, retired);
  return { disks: final, retired };
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
