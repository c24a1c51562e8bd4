/** One HTTP call a service makes; built by pure functions so tests can inspect it. */
export interface HttpRequest {
  /** any HTTP method; the generic service lets the user choose */
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface HttpResponse {
  readonly status: number;
  readonly body: string;
}

export type HttpClient = (request: HttpRequest) => Promise<HttpResponse>;

/**
 * The server answered with a status that means failure; retried only when the server may recover.
 * The whole reply is kept: it is shortened only after secrets are blanked out of it, so a cut never
 * leaves part of a token behind.
 */
export class HttpStatusError extends Error {
  readonly status: number;
  constructor(status: number, body: string) {
    const detail = body.trim();
    super(`server answered HTTP ${status}${detail ? `: ${detail}` : ''}`);
    this.name = 'HttpStatusError';
    this.status = status;
  }
  get retryable(): boolean {
    return this.status >= 500 || this.status === 429 || this.status === 408;
  }
}

// Bytes per encoded word: 45 bytes are 60 base64 characters, within RFC 2047's 75 per word.
const encodedWordBytes = 45;

/**
 * A header value as RFC 2047 encoded words when it holds anything but printable ASCII: HTTP
 * headers are bytes, and fetch refuses characters above U+00FF outright. ntfy and most servers
 * decode this form; ASCII values are left as they are.
 */
export function encodeHeaderValue(value: string): string {
  if (/^[\x20-\x7e]*$/.test(value)) return value;
  const words: string[] = [];
  let chunk = '';
  for (const char of value) {
    if (Buffer.byteLength(chunk + char) > encodedWordBytes) {
      words.push(chunk);
      chunk = '';
    }
    chunk += char;
  }
  if (chunk !== '') words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w).toString('base64')}?=`).join(' ');
}

/** Node's fetch with a hard deadline per call. */
export function fetchClient(timeoutMs: number): HttpClient {
  return async (request) => {
    const headers = Object.fromEntries(
      Object.entries(request.headers).map(([name, value]) => [name, encodeHeaderValue(value)]),
    );
    const response = await fetch(request.url, {
      method: request.method,
      headers,
      ...(request.body === undefined ? {} : { body: request.body }),
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    });
    const body = await response.text();
    if (response.status < 200 || response.status >= 300) throw new HttpStatusError(response.status, body);
    return { status: response.status, body };
  };
}

export function jsonRequest(
  method: string,
  url: string,
  payload: unknown,
  headers: Record<string, string> = {},
): HttpRequest {
  return {
    method,
    url,
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(payload),
  };
}

export function formRequest(
  url: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
): HttpRequest {
  return {
    method: 'POST',
    url,
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  };
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
