/** What a notification says. Services without a title field put the title on the first line. */
export interface NotifyMessage {
  readonly title?: string;
  readonly body: string;
}

export function titledBody(message: NotifyMessage): string {
  return message.title ? `${message.title}\n${message.body}` : message.body;
}

/** At most `limit` characters (code points, so no emoji is cut in half), ending in "…" when cut. */
export function truncateCharacters(text: string, limit: number): string {
  const chars = Array.from(text);
  return chars.length <= limit ? text : `${chars.slice(0, limit - 1).join('')}…`;
}

/** At most `limit` UTF-8 bytes, cut at a character boundary, ending in "…" when cut. */
export function truncateBytes(text: string, limit: number): string {
  if (Buffer.byteLength(text) <= limit) return text;
  let result = '';
  let bytes = Buffer.byteLength('…');
  for (const char of text) {
    bytes += Buffer.byteLength(char);
    if (bytes > limit) break;
    result += char;
  }
  return `${result}…`;
}
