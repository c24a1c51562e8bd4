import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Test-only fault injection, off unless its variables are set: tests of crash safety and locking
 * need a process that dies at an exact point or holds a lock long enough to be seen.
 */
const killAfterStep = Number(process.env.UNIFI_BACKUP_FAULT_KILL_AFTER_STEP ?? 'NaN');
const holdLockMs = Number(process.env.UNIFI_BACKUP_FAULT_HOLD_LOCK_MS ?? 'NaN');

/**
 * SIGKILLs this process right after step `done` (1-based) of a plan, when asked to. Work a verb does
 * outside its plan is numbered around it: 0 is before the plan's first step (maintenance enter's
 * record written), N+1 and N+2 follow a plan of N steps (maintenance save/drop removing the memory
 * state, then the record). Sync, which has no journal, numbers its own steps the same way.
 */
export function faultAfterStep(done: number): void {
  if (done === killAfterStep) process.kill(process.pid, 'SIGKILL');
}

/** Keeps a freshly taken lock for a while, when asked to. */
export async function faultHoldLock(): Promise<void> {
  if (Number.isFinite(holdLockMs)) await sleep(holdLockMs);
}
