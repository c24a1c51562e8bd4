/** One HTTP call a service makes; built by pure functions so tests can inspect it. */
export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'PUT';
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface HttpResponse {
  readonly status: number;
  readonly body: string;
}

export type HttpClient = (request: HttpRequest) => Promise<HttpResponse>;

/** The server answered with a status that means failure; retried only when the server may recover. */
export class HttpStatusError extends Error {
  readonly status: number;
  constructor(status: number, body: string) {
    const detail = body.trim().slice(0, 300);
    super(`server answered HTTP ${status}${detail ? `: ${detail}` : ''}`);
    this.name = 'HttpStatusError';
    this.status = status;
  }
  get retryable(): boolean {
    return this.status >= 500 || this.status === 429 || this.status === 408;
  }
}

/** Node's fetch with a hard deadline per call. */
export function fetchClient(timeoutMs: number): HttpClient {
  return async (request) => {
    const response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
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
  method: HttpRequest['method'],
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
