import path from 'node:path';
import { UsageError } from '../errors.js';
import { checkDomainName, domainFileName, levels } from './model.js';
import type { Level } from './model.js';

export const defaultUnitDir = '/etc/systemd/system';
export const flockProgram = '/usr/bin/flock';

export interface SystemdSettings {
  readonly schedules: Partial<Record<Level, string>>;
  readonly program: string;
  readonly randomizedDelaySec?: number;
  /** Where the per-domain flock files live: the tool's own lock folder, made by each service. */
  readonly lockDir: string;
}

export interface UnitFile {
  readonly name: string;
  readonly text: string;
}

const unitNameMax = 255;

/** systemd's unit-name escaping (as `systemd-escape` does, keeping `-` readable). */
export function escapeUnitName(text: string): string {
  let escaped = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte);
    const plain = /[A-Za-z0-9:_.-]/.test(char) && !(escaped === '' && char === '.');
    escaped += plain ? char : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return escaped;
}

export function unitBaseName(domain: string, level: Level): string {
  return `unifi-backup-${escapeUnitName(domain)}-${level}`;
}

/** systemd expands `%` specifiers in most settings; a literal percent is `%%`. */
function withoutSpecifiers(text: string): string {
  return text.replaceAll('%', '%%');
}

/** Free text for Description=: one line, no specifiers. */
function unitText(text: string): string {
  return withoutSpecifiers(text.replace(/[\p{Cc}]/gu, '?'));
}

/**
 * One ExecStart= word. systemd splits the line itself (no shell): double quotes group, backslash
 * escapes as in C, a dollar sign expands environment variables unless doubled, a percent sign expands specifiers.
 */
export function execWord(word: string): string {
  if (/^[A-Za-z0-9_@+=:,./-]+$/.test(word)) return word;
  let quoted = '';
  for (const char of word) {
    if (char === '\\') quoted += '\\\\';
    else if (char === '"') quoted += '\\"';
    else if (char === '$') quoted += '$$';
    else if (char === '%') quoted += '%%';
    else if (char === '\n') quoted += '\\n';
    else if (char === '\t') quoted += '\\t';
    else if (/\p{Cc}/u.test(char)) quoted += `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`;
    else quoted += char;
  }
  return `"${quoted}"`;
}

export function execLine(argv: readonly string[]): string {
  return argv.map(execWord).join(' ');
}

/** The argv a level's service runs: the tool itself, serialised per domain by flock. */
export function serviceArgv(settings: SystemdSettings, domain: string, level: Level): string[] {
  const lockFile = `${settings.lockDir}/unifi-backup-${domainFileName(domain)}.units.lock`;
  return [flockProgram, lockFile, settings.program, 'run', level, domain];
}

/**
 * /run is emptied at boot and flock makes no folders: systemd makes the lock folder, root's alone,
 * before each run, and keeps it while other services hold locks in it.
 */
function lockFolderLines(lockDir: string): string[] {
  const under = path.posix.relative('/run', lockDir);
  if (under === '' || under.startsWith('..') || path.posix.isAbsolute(under)) return [];
  return [`RuntimeDirectory=${under}`, 'RuntimeDirectoryMode=0700', 'RuntimeDirectoryPreserve=yes'];
}

function serviceUnit(settings: SystemdSettings, domain: string, level: Level): string {
  return [
    '[Unit]',
    `Description=${unitText(`unifi-backup ${level} backup of libvirt domain ${domain}`)}`,
    'Wants=network-online.target',
    'After=network-online.target libvirtd.service virtqemud.service',
    '',
    '[Service]',
    'Type=oneshot',
    ...lockFolderLines(settings.lockDir),
    'UMask=0077',
    // Levels of one domain wait for each other: flock holds a per-domain lock file for the run.
    `ExecStart=${execLine(serviceArgv(settings, domain, level))}`,
    '',
  ].join('\n');
}

function timerUnit(settings: SystemdSettings, domain: string, level: Level, schedule: string): string {
  if (/[\n\r]/.test(schedule)) throw new UsageError(`the ${level} schedule must be one line.`);
  return [
    '[Unit]',
    `Description=${unitText(`unifi-backup ${level} backup schedule of libvirt domain ${domain}`)}`,
    '',
    '[Timer]',
    `OnCalendar=${withoutSpecifiers(schedule)}`,
    'Persistent=true',
    ...(settings.randomizedDelaySec === undefined
      ? []
      : [`RandomizedDelaySec=${settings.randomizedDelaySec}`]),
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
}

/** A service and a timer per domain and scheduled level (pure). */
export function buildSystemdUnits(settings: SystemdSettings, domains: readonly string[]): UnitFile[] {
  const units: UnitFile[] = [];
  for (const domain of domains) {
    checkDomainName(domain);
    for (const level of levels) {
      const schedule = settings.schedules[level];
      if (schedule === undefined) continue;
      const base = unitBaseName(domain, level);
      if (base.length + '.service'.length > unitNameMax) {
        throw new UsageError(
          `domain "${domain}": the unit name ${base}.service is longer than systemd allows.`,
        );
      }
      units.push({ name: `${base}.service`, text: serviceUnit(settings, domain, level) });
      units.push({ name: `${base}.timer`, text: timerUnit(settings, domain, level, schedule) });
    }
  }
  return units;
}

/** The systemctl commands that make installed timers take effect. */
export function enableCommands(units: readonly UnitFile[]): string[][] {
  const timers = units.filter((unit) => unit.name.endsWith('.timer')).map((unit) => unit.name);
  return [
    ['systemctl', 'daemon-reload'],
    ['systemctl', 'enable', '--now', ...timers],
  ];
}
