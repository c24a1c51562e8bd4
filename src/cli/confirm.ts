import { createInterface } from 'node:readline/promises';

/**
 * Asks a yes/no question on a terminal. Without a terminal (cron, systemd, CI) there is nobody to
 * ask: the caller's flags decide, so this answers yes.
 */
export async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return true;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}
