import { UsageError } from '../errors.js';
import { checkDomainName, levels, notifySendArgv } from './model.js';
import type { NotifySettings, ScheduledLevel } from './model.js';

export const defaultUnitDir = '/etc/systemd/system';

export interface SystemdSettings {
  readonly schedules: Partial<Record<ScheduledLevel, string>>;
  readonly program: string;
  /** Global options the tool must repeat (a non-default --state-dir, --lock-dir or --connect). */
  readonly programOptions: readonly string[];
  readonly randomizedDelaySec?: number;
  /** With it, a failed run starts the notification unit (`OnFailure=`). */
  readonly notify?: NotifySettings;
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

export function unitBaseName(domain: string, level: ScheduledLevel): string {
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

/** The argv a level's service runs: the tool itself, whose per-domain lock serialises the levels. */
export function serviceArgv(settings: SystemdSettings, domain: string, level: ScheduledLevel): string[] {
  return [settings.program, ...settings.programOptions, 'run', level, '--', domain];
}

/** The template unit a failed backup service starts, with the failed unit's name as its instance. */
export const failureUnitName = 'unifi-backup-failure@.service';

/** How long a busy domain (exit 3: another run holds its lock) is retried, as resticprofile's lock-wait. */
const busyRetrySec = 120;
const busyRetries = 120;

/**
 * Confinement that `systemd-analyze security` scores at most 5.0 while the tool still reaches
 * libvirt's socket, the VM folders wherever they are (read-write), its state, locks and restic's cache.
 */
export const hardeningLines: readonly string[] = [
  'ProtectSystem=full',
  'PrivateTmp=yes',
  'PrivateDevices=yes',
  'DevicePolicy=closed',
  'ProtectKernelTunables=yes',
  'ProtectKernelModules=yes',
  'ProtectKernelLogs=yes',
  'ProtectControlGroups=yes',
  'ProtectClock=yes',
  'ProtectHostname=yes',
  'ProtectProc=invisible',
  'NoNewPrivileges=yes',
  'RestrictNamespaces=yes',
  'RestrictRealtime=yes',
  'RestrictSUIDSGID=yes',
  'LockPersonality=yes',
  'MemoryDenyWriteExecute=no',
  'RemoveIPC=yes',
  'KeyringMode=private',
  'SystemCallArchitectures=native',
  'SystemCallFilter=@system-service',
  'SystemCallFilter=~@mount @reboot @swap @module @raw-io @clock @cpu-emulation @debug @obsolete',
  // A call outside the filter fails with EPERM rather than killing the run halfway through a step.
  'SystemCallErrorNumber=EPERM',
  'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK',
  'CapabilityBoundingSet=CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_CHOWN',
  'AmbientCapabilities=',
  'UMask=0077',
];

function serviceUnit(settings: SystemdSettings, domain: string, level: ScheduledLevel): string {
  return [
    '[Unit]',
    `Description=${unitText(`unifi-backup ${level} backup of libvirt domain ${domain}`)}`,
    'Wants=network-online.target',
    'After=network-online.target libvirtd.service virtqemud.service',
    ...(settings.notify === undefined ? [] : [`OnFailure=${failureUnitName.replace('@.', '@%n.')}`]),
    `StartLimitIntervalSec=${busyRetrySec * (busyRetries + 1)}`,
    `StartLimitBurst=${busyRetries}`,
    '',
    '[Service]',
    // Not oneshot: systemd restarts only other types, and a busy domain is retried.
    'Type=exec',
    `ExecStart=${execLine(serviceArgv(settings, domain, level))}`,
    // Exit 3: the domain is busy (another level runs); try again rather than fail.
    'RestartForceExitStatus=3',
    `RestartSec=${busyRetrySec}`,
    'RuntimeMaxSec=12h',
    'Nice=10',
    'IOSchedulingClass=idle',
    'CPUSchedulingPolicy=batch',
    // restic keeps its cache under $HOME/.cache unless told; units get no HOME.
    'Environment=HOME=/root',
    'CacheDirectory=unifi-backup',
    'CacheDirectoryMode=0700',
    'Environment=RESTIC_CACHE_DIR=%C/unifi-backup',
    'RuntimeDirectory=unifi-backup',
    'RuntimeDirectoryMode=0700',
    'RuntimeDirectoryPreserve=yes',
    'StateDirectory=unifi-backup',
    'StateDirectoryMode=0700',
    ...hardeningLines,
    '',
  ].join('\n');
}

function failureUnit(settings: SystemdSettings, notify: NotifySettings): string {
  const argv = [
    ...notifySendArgv(settings.program, settings.programOptions, notify),
    '--title',
    'unifi-backup: a scheduled backup FAILED',
    '--msg',
  ];
  return [
    '[Unit]',
    'Description=unifi-backup notification that %I failed',
    '',
    '[Service]',
    'Type=oneshot',
    // %I is the failed unit's name: a word systemd passes as it is, not through a shell.
    `ExecStart=${execLine(argv)} "systemd unit %I failed; see: journalctl -u %I"`,
    'TimeoutStartSec=5min',
    'Environment=HOME=/root',
    ...hardeningLines,
    '',
  ].join('\n');
}

function timerUnit(
  settings: SystemdSettings,
  domain: string,
  level: ScheduledLevel,
  schedule: string,
): string {
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
  if (settings.notify !== undefined)
    units.push({ name: failureUnitName, text: failureUnit(settings, settings.notify) });
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
