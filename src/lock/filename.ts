/**
 * A domain's name as one plain file name (locks, journals, maintenance records): libvirt allows any
 * character but '/', and a leading '.' would hide the file or make `..`.
 */
export function domainFileName(domain: string, suffix: string): string {
  return `${encodeURIComponent(domain).replace(/^\./, '%2E')}${suffix}`;
}
