import { UsageError } from '../errors.js';

/** A notification URL is wrong; the message names the part (never its secret value). */
export class ServiceUrlError extends UsageError {
  readonly scheme: string;
  readonly part: string;
  constructor(scheme: string, part: string, problem: string) {
    super(`${scheme} URL: ${part}: ${problem}`);
    this.scheme = scheme;
    this.part = part;
  }
}

/** The pieces of a service URL, percent-decoded. Query keys are lower-cased: shoutrrr treats them so. */
export interface UrlParts {
  readonly scheme: string;
  readonly user: string;
  readonly password: string;
  readonly hasPassword: boolean;
  readonly hostname: string;
  readonly port: number | undefined;
  /** host[:port] as written */
  readonly host: string;
  readonly path: string;
  readonly segments: readonly string[];
  readonly fragment: string;
  readonly query: ReadonlyMap<string, string>;
  /** query keys as written, in order, for services that forward them */
  readonly rawQuery: readonly (readonly [string, string])[];
}

function decode(scheme: string, part: string, value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new ServiceUrlError(scheme, part, 'bad percent-encoding');
  }
}

/** Explains why a string is not a URL without repeating it (it may hold a secret). */
function whyNotUrl(raw: string): [string, string] {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(raw))
    return ['scheme', 'expected scheme://… (for example telegram://…)'];
  if (/^[^:]+:\/\/[^/?#]*@(?:[/?#]|$)/.test(raw)) return ['host', 'missing after the @'];
  if (/\s/.test(raw)) return ['url', 'contains whitespace; percent-encode it (%20)'];
  const port = /^[^:]+:\/\/(?:[^@/?#]*@)?[^/?#:]*:([^/?#]*)/.exec(raw)?.[1];
  if (port !== undefined && !/^\d{0,5}$/.test(port)) return ['port', 'must be a number 1-65535'];
  if (port !== undefined && Number(port) > 65535) return ['port', 'must be a number 1-65535'];
  return ['url', 'not a valid URL; percent-encode special characters in passwords and tokens'];
}

export function splitUrl(raw: string): UrlParts {
  const trimmed = raw.trim();
  if (!URL.canParse(trimmed)) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(trimmed)?.[1]?.toLowerCase() ?? 'notification';
    const [part, problem] = whyNotUrl(trimmed);
    throw new ServiceUrlError(scheme, part, problem);
  }
  const url = new URL(trimmed);
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (url.hostname === '' && url.pathname === '' && !trimmed.includes('://')) {
    throw new ServiceUrlError(scheme, 'scheme', 'expected scheme://…');
  }
  const path = decode(scheme, 'path', url.pathname);
  const query = new Map<string, string>();
  const rawQuery: [string, string][] = [];
  for (const [key, value] of url.searchParams) {
    rawQuery.push([key, value]);
    query.set(key.toLowerCase(), value);
  }
  return {
    scheme,
    user: decode(scheme, 'user', url.username),
    password: decode(scheme, 'password', url.password),
    hasPassword: url.password !== '' || /^[^:]+:\/\/[^@/?#]*:[^@/?#]*@/.test(trimmed),
    hostname: decode(scheme, 'host', url.hostname),
    port: url.port === '' ? undefined : Number(url.port),
    host: decode(scheme, 'host', url.host),
    path,
    segments: url.pathname
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decode(scheme, 'path', s)),
    fragment: decode(scheme, 'fragment', url.hash.replace(/^#/, '')),
    query,
    rawQuery,
  };
}

export const truthyWords: readonly string[] = ['yes', 'true', '1', 'on', 'y'];
export const falsyWords: readonly string[] = ['no', 'false', '0', 'off', 'n'];
const truthy = new Set(truthyWords);
const falsy = new Set(falsyWords);

/**
 * Reads query parameters by name (with aliases) and rejects any it did not read, so a typo
 * is reported instead of silently ignored.
 */
export class QueryReader {
  private readonly used = new Set<string>();
  constructor(
    private readonly parts: UrlParts,
    private readonly known: readonly string[],
  ) {}

  private find(names: readonly string[]): [string, string] | undefined {
    for (const name of names) {
      const value = this.parts.query.get(name.toLowerCase());
      this.used.add(name.toLowerCase());
      if (value !== undefined) return [name, value];
    }
    return undefined;
  }

  private fail(name: string, problem: string): never {
    throw new ServiceUrlError(this.parts.scheme, `query parameter "${name}"`, problem);
  }

  string(names: string | readonly string[], fallback = ''): string {
    return this.find(typeof names === 'string' ? [names] : names)?.[1] ?? fallback;
  }

  required(names: string | readonly string[], what: string): string {
    const list = typeof names === 'string' ? [names] : names;
    const value = this.find(list)?.[1] ?? '';
    if (value === '') this.fail(list[0] ?? '', `missing; give ${what}`);
    return value;
  }

  bool(names: string | readonly string[], fallback: boolean): boolean {
    const found = this.find(typeof names === 'string' ? [names] : names);
    if (found === undefined || found[1] === '') return fallback;
    const value = found[1].toLowerCase();
    if (truthy.has(value)) return true;
    if (falsy.has(value)) return false;
    return this.fail(found[0], 'expected yes or no');
  }

  int(names: string | readonly string[], fallback: number, min: number, max: number): number {
    const found = this.find(typeof names === 'string' ? [names] : names);
    if (found === undefined || found[1] === '') return fallback;
    const value = Number(found[1]);
    if (!Number.isInteger(value) || value < min || value > max) {
      return this.fail(found[0], `expected a whole number from ${min} to ${max}`);
    }
    return value;
  }

  list(names: string | readonly string[], separator = ','): string[] {
    const value = this.find(typeof names === 'string' ? [names] : names)?.[1] ?? '';
    return value
      .split(separator)
      .map((s) => s.trim())
      .filter((s) => s !== '');
  }

  oneOf<T extends string>(names: string | readonly string[], choices: readonly T[], fallback: T): T {
    const found = this.find(typeof names === 'string' ? [names] : names);
    if (found === undefined || found[1] === '') return fallback;
    const match = choices.find((c) => c.toLowerCase() === found[1].toLowerCase());
    if (match === undefined) return this.fail(found[0], `expected one of ${choices.join(', ')}`);
    return match;
  }

  /** Throws for a parameter the service does not know (usually a typo). */
  done(): void {
    for (const key of this.parts.query.keys()) {
      if (!this.used.has(key) && !this.known.some((k) => k.toLowerCase() === key)) {
        this.fail(key, `unknown; known parameters: ${this.known.join(', ') || 'none'}`);
      }
    }
  }
}

export function requirePart(parts: UrlParts, part: string, value: string, what: string): string {
  if (value === '') throw new ServiceUrlError(parts.scheme, part, `missing; give ${what}`);
  return value;
}
