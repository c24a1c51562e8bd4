/**
 * How long the tool waits for what can hang: libvirtd, the guest agent, a block job. Each is
 * overridable in config.yaml (`timeouts:`, in seconds); a hang then ends as an error naming the
 * domain and the next step, with the VM left running.
 */
export interface Timeouts {
  /** One virsh run that should answer at once: a query, a definition, a snapshot of the disks. */
  readonly virshMs: number;
  /** The guest agent's answer to a ping before a quiesced snapshot. */
  readonly guestAgentMs: number;
  /** A block job whose progress has not moved for this long is aborted. */
  readonly blockJobStallMs: number;
}

export const defaultTimeouts: Timeouts = {
  virshMs: 120_000,
  guestAgentMs: 10_000,
  blockJobStallMs: 600_000,
};

/** config.yaml's `timeouts:` section (seconds), over the defaults. */
export function timeoutsFromConfig(section?: {
  readonly virsh?: number;
  readonly 'guest-agent'?: number;
  readonly 'block-job-stall'?: number;
}): Timeouts {
  const ms = (seconds: number | undefined, fallback: number) =>
    seconds === undefined ? fallback : seconds * 1000;
  return {
    virshMs: ms(section?.virsh, defaultTimeouts.virshMs),
    guestAgentMs: ms(section?.['guest-agent'], defaultTimeouts.guestAgentMs),
    blockJobStallMs: ms(section?.['block-job-stall'], defaultTimeouts.blockJobStallMs),
  };
}
