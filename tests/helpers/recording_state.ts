/**
 * A worker's state with a broker and a backend that record what the worker
 * does with its deliveries instead of sending it: parks, acknowledgements and
 * stored results, plus the worker's counters — for tests of the settle and
 * park paths that need no server.
 *
 * @module
 */

import type { ResultBackend, StoreEntry } from "../../src/backend/port.ts";
import type { Broker, Delivery, Rejection } from "../../src/broker/port.ts";
import { Celery } from "../../mod.ts";
import { WorkerState } from "../../src/worker/worker_state.ts";
import { countStats, type WorkerStats, zeroStats } from "../../src/worker/worker_stats.ts";

/** What {@link recordingState} returns: the state and what its broker and backend were asked. */
export interface RecordingState {
  /** The worker's state, on an in-memory app, hostname `test@host`. */
  st: WorkerState;
  /** Rejections the worker parked. */
  parked: Rejection[];
  /** Deliveries the worker acknowledged. */
  acked: Delivery[];
  /** Results the worker stored. */
  stored: StoreEntry[];
  /** The worker's counters, kept by a lifecycle subscriber. */
  stats: WorkerStats;
}

/**
 * A {@link WorkerState} whose broker records parks and acknowledgements and
 * whose backend records stored results; every write resolves at once.
 *
 * @example
 * ```ts
 * import { recordingState } from "./recording_state.ts";
 * const { st, parked } = recordingState();
 * st.app.task("t.add", (a: number, b: number) => a + b);
 * console.log(parked.length); // 0
 * ```
 */
export function recordingState(): RecordingState {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const st = new WorkerState(app, { app }, "test@host");
  const stats = zeroStats();
  st.lifecycle.subscribe(countStats(stats));
  const parked: Rejection[] = [];
  const acked: Delivery[] = [];
  const stored: StoreEntry[] = [];
  st.broker = {
    reject: (r: Rejection[]) => (parked.push(...r), Promise.resolve()),
    ack: (d: Delivery[]) => (acked.push(...d), Promise.resolve()),
  } as unknown as Broker;
  st.backend = {
    store: (e: StoreEntry[]) => (stored.push(...e), Promise.resolve()),
  } as unknown as ResultBackend;
  return { st, parked, acked, stored, stats };
}
