/**
 * The schedule store as the beat loop uses it: a stop gives up a store call
 * still unanswered (a stalled Redis may take minutes, TCP's own timeout, to
 * fail it), and the lease's release and the close wait at most the close
 * timeout the connections use (2 s).
 *
 * @module
 */

import type { ScheduleStore } from "../broker/schedule_store.ts";
import { closeWait, unlessAborted } from "../broker/sleep.ts";

/**
 * Wrap `store` for the beat loop: once `signal` aborts, every pending or
 * later call rejects with its reason, but `release` and `close`, which wait
 * at most 2 s and never reject.
 *
 * @example
 * ```ts ignore
 * const stop = new AbortController();
 * const guarded = stoppable(await openScheduleStore("redis://127.0.0.1:6379/0"), stop.signal);
 * stop.abort(); // a guarded.readRuns() still waiting on a stalled Redis rejects now
 * await guarded.close(); // at most 2 s
 * ```
 *
 * @param store the store
 * @param signal the beat's stop
 * @returns the guarded store
 */
export function stoppable(store: ScheduleStore, signal: AbortSignal): ScheduleStore {
  return {
    acquire: (...a) => unlessAborted(store.acquire(...a), signal),
    lease: () => unlessAborted(store.lease(), signal),
    readRuns: () => unlessAborted(store.readRuns(), signal),
    commitRun: (...a) => unlessAborted(store.commitRun(...a), signal),
    deleteRun: (entry) => unlessAborted(store.deleteRun(entry), signal),
    readEntries: () => unlessAborted(store.readEntries(), signal),
    putEntry: (name, value) => unlessAborted(store.putEntry(name, value), signal),
    deleteEntry: (name) => unlessAborted(store.deleteEntry(name), signal),
    release: async (holder, token) => void await closeWait(store.release(holder, token)),
    close: async () => void await closeWait(store.close()),
  };
}
