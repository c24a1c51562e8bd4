import type { ProgressEvent } from '../ops/context.js';

/**
 * Progress of long jobs on stderr: a bar on a terminal, a plain line every 10 % otherwise, JSON
 * lines with --json. stdout stays the result.
 */
export function progressReporter(
  json: boolean,
  stream: NodeJS.WriteStream = process.stderr,
  bars: boolean = stream.isTTY,
): (e: ProgressEvent) => void {
  const last = new Map<string, number>();
  return (event) => {
    const key = `${event.domain}\0${event.target}\0${event.job}`;
    const previous = last.get(key) ?? -1;
    if (event.percent === previous) return;
    last.set(key, event.percent);
    const label = `${event.domain} ${event.target} ${event.job}`;
    if (json) {
      stream.write(`${JSON.stringify({ event: 'progress', ...event })}\n`);
    } else if (bars) {
      const width = 30;
      const filled = Math.round((event.percent / 100) * width);
      stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${event.percent}%`);
      if (event.percent >= 100) stream.write('\n');
    } else if (Math.floor(event.percent / 10) > Math.floor(previous / 10) || previous < 0) {
      stream.write(`${label} ${event.percent}%\n`);
    }
  };
}
