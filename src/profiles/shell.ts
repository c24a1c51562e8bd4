/**
 * Quoting for the POSIX shell that resticprofile runs `run-before`/`run-after` commands through.
 * Inside single quotes nothing is special, so a word is safe once its own single quotes are closed,
 * escaped and reopened.
 */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** One command line from an argument vector; every word quoted as needed. */
export function shellCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}
