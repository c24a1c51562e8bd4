/** Shorter values are too likely to be ordinary words or numbers to blank out of free text. */
const minimumSecretLength = 4;

export const redactedMark = '***';

/** The forms a secret can take in text: as is, percent-encoded, form-encoded. */
function forms(secret: string): string[] {
  const encoded = encodeURIComponent(secret);
  return [
    ...new Set([
      secret,
      encoded,
      encoded.replaceAll('%20', '+'),
      new URLSearchParams({ s: secret }).toString().slice(2),
    ]),
  ];
}

/** Blanks every known secret out of a text, longest first so a secret's parts do not leave pieces behind. */
export function redactSecrets(text: string, secrets: Iterable<string>): string {
  const all = [...new Set([...secrets].filter((s) => s.length >= minimumSecretLength).flatMap(forms))].sort(
    (a, b) => b.length - a.length,
  );
  let result = text;
  for (const secret of all) result = result.split(secret).join(redactedMark);
  return result;
}

/**
 * A URL with its credentials, path and query values blanked, for showing which target is meant
 * without revealing it: scheme://***@host/***?key=***.
 */
export function redactUrl(raw: string): string {
  const match = /^([a-z][a-z0-9+.-]*):\/\/(?:[^@/?#]*@)?([^/?#]*)([^?#]*)(\?[^#]*)?/i.exec(raw.trim());
  if (match === null) return redactedMark;
  const [, scheme = '', host = '', path = '', query = ''] = match;
  const hadUser = /^[^:]+:\/\/[^@/?#]*@/.test(raw.trim());
  const keys =
    query === ''
      ? []
      : query
          .slice(1)
          .split('&')
          .map((pair) => pair.split('=')[0] ?? '');
  return `${scheme}://${hadUser ? `${redactedMark}@` : ''}${host}${path !== '' && path !== '/' ? `/${redactedMark}` : path}${
    keys.length > 0 ? `?${keys.map((k) => `${k}=${redactedMark}`).join('&')}` : ''
  }`;
}
