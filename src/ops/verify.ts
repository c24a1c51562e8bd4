import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { unsupportedReason } from '../chain/eligibility.js';
import { isIgnoredDevice } from '../chain/model.js';
import { configDumps } from '../chain/plan.js';
import { UserError } from '../errors.js';
import { parseDomainXml } from '../host/domainxml.js';
import type { Restic } from '../host/restic.js';
import { ResticError } from '../host/restic.js';
import { domainTag } from '../naming.js';
import { checkLayers, walkChain } from './chaincheck.js';
import type { OpsContext } from './context.js';

export interface VerifyReport {
  readonly domain: string;
  readonly disks: readonly { readonly target: string; readonly layers: readonly string[] }[];
  /** What was checked and found good, one line each. */
  readonly passed: readonly string[];
  readonly problems: readonly string[];
  readonly resticSnapshot?: string;
}

/** Every problem of one domain at once (so one run shows all that needs repair). */
export class VerifyFailedError extends UserError {}

async function checkDump(file: string): Promise<string | undefined> {
  try {
    parseDomainXml(await readFile(file, 'utf8'), `config dump ${file}`);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** What verify found so far: a line per check passed, a line per problem. */
interface Findings {
  readonly passed: string[];
  readonly problems: string[];
}

interface FrozenFile {
  readonly path: string;
  readonly size: number;
}

/**
 * `verify DOMAIN [--restic]`: every frozen layer passes `qemu-img check`, every backing file is
 * present with the recorded format and a sane size, the config dumps parse; with restic, the
 * repository passes `restic check` and the domain's latest snapshot holds every frozen layer.
 */
export async function verifyDomain(
  ctx: OpsContext,
  domain: string,
  options: { restic?: Restic; host?: string } = {},
): Promise<VerifyReport> {
  const info = await ctx.host.virsh.info(domain);
  const xml = parseDomainXml(await ctx.host.virsh.dumpXml(domain), `definition of domain '${domain}'`);
  const findings: Findings = { passed: [], problems: [] };
  const { disks, frozen } = await checkChains(ctx, xml.disks, findings);
  if (disks.length === 0)
    throw new UserError(`domain '${info.name}' has no qcow2 or raw file disk: nothing to verify.`);
  const first = disks[0]?.layers[0];
  if (first !== undefined) await checkDumps(path.dirname(first), info.name, frozen, findings);
  const resticSnapshot =
    options.restic === undefined
      ? undefined
      : await checkRestic(options.restic, info.name, options.host, frozen, findings);
  return {
    domain: info.name,
    disks,
    ...findings,
    ...(resticSnapshot === undefined ? {} : { resticSnapshot }),
  };
}

/** Walks and checks the chain of every file disk; returns the chains and their frozen layers. */
async function checkChains(
  ctx: OpsContext,
  xmlDisks: ReturnType<typeof parseDomainXml>['disks'],
  findings: Findings,
): Promise<{ disks: { target: string; layers: string[] }[]; frozen: FrozenFile[] }> {
  const disks: { target: string; layers: string[] }[] = [];
  const frozen: FrozenFile[] = [];
  for (const disk of xmlDisks) {
    if (isIgnoredDevice(disk) || unsupportedReason(disk) !== undefined || disk.source === undefined) continue;
    const label = `disk ${disk.target}`;
    const walk = await walkChain(ctx.host.qemuImg, disk.source, label, disk.driverType);
    const below = walk.layers.slice(1);
    const checks = await checkLayers(ctx.host.qemuImg, below, label);
    findings.problems.push(...walk.problems, ...checks);
    disks.push({ target: disk.target, layers: walk.layers.map((l) => l.filename) });
    if (walk.problems.length === 0)
      findings.passed.push(
        `${label}: chain of ${walk.layers.length} layers complete, formats and sizes consistent`,
      );
    if (checks.length === 0 && below.length > 0)
      findings.passed.push(`${label}: qemu-img check clean on ${below.length} frozen layers`);
    for (const layer of below)
      if (existsSync(layer.filename))
        frozen.push({ path: layer.filename, size: statSync(layer.filename).size });
  }
  return { disks, frozen };
}

async function checkDumps(
  dir: string,
  domain: string,
  frozen: readonly FrozenFile[],
  findings: Findings,
): Promise<void> {
  for (const dump of configDumps(dir, domain)) {
    if (!existsSync(dump.file)) {
      if (frozen.length > 0)
        findings.problems.push(`config dump ${dump.file} is missing; the next 'backup incr' writes it`);
      continue;
    }
    const problem = await checkDump(dump.file);
    if (problem === undefined) findings.passed.push(`config dump ${dump.file} parses`);
    else findings.problems.push(problem);
  }
}

/** `restic check`, then whether the domain's latest snapshot holds every frozen layer; returns its short id. */
async function checkRestic(
  restic: Restic,
  domain: string,
  host: string | undefined,
  frozen: readonly FrozenFile[],
  findings: Findings,
): Promise<string | undefined> {
  try {
    await restic.check();
    findings.passed.push(`restic check of ${restic.repositoryText} clean`);
  } catch (error) {
    if (!(error instanceof ResticError)) throw error;
    findings.problems.push(error.message);
  }
  const snapshots = await restic.snapshots({
    tags: [domainTag(domain, 'Verify it without --restic.')],
    ...(host === undefined ? {} : { host }),
  });
  const latest = snapshots.at(-1);
  if (latest === undefined) {
    findings.problems.push(
      `restic: no snapshot of domain '${domain}' in ${restic.repositoryText}; run 'run incr' first`,
    );
    return undefined;
  }
  const held = new Map((await restic.ls(latest.id)).map((e) => [e.path, e.size]));
  const missing = frozen.filter((f) => held.get(f.path) !== f.size);
  for (const f of missing)
    findings.problems.push(
      held.has(f.path)
        ? `restic snapshot ${latest.shortId} holds ${f.path} with another size (${held.get(f.path)} ≠ ${f.size} bytes)`
        : `restic snapshot ${latest.shortId} does not hold frozen layer ${f.path}; run 'run incr' to back it up`,
    );
  if (missing.length === 0)
    findings.passed.push(`restic snapshot ${latest.shortId} holds all ${frozen.length} frozen layers`);
  return latest.shortId;
}
