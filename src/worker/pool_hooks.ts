/**
 * What the worker does with what its pool reports ({@link PoolEvents}):
 * settle outcomes, lost tasks and time limits, publish and record what a
 * task sends, store a task's custom states, report leaked threads.
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import { withChildren } from "./chords.ts";
import type { Consumer } from "./consumer.ts";
import type { HeapCap } from "./heap_cap.ts";
import { settleOrPark } from "./last_resort.ts";
import { settleLost, settleOutcomes, settleTimeLimit } from "./outcomes.ts";
import type { PoolEvents } from "./pool.ts";
import { storeState } from "./task_state.ts";
import type { WorkerState } from "./worker_state.ts";

/**
 * The worker's handlers of its pool's events.
 *
 * @example
 * ```ts ignore
 * const { pool } = createPool(app, s.options, poolHooks(s, app, consumer, heap, onThreadLeak));
 * ```
 *
 * @param s the worker's shared state
 * @param app the app (publishes what tasks send, sends task-sent events)
 * @param consumer told of every outcome batch (its take window follows them)
 * @param heap told how many tasks settled (collects garbage now and then)
 * @param onThreadLeak a thread of a terminated Web Worker still runs
 * @returns the pool's events
 */
export function poolHooks(
  s: WorkerState,
  app: Celery,
  consumer: Consumer,
  heap: HeapCap,
  onThreadLeak: NonNullable<PoolEvents["onThreadLeak"]>,
): PoolEvents {
  return {
    onOutcomes: (outs) => {
      consumer.observe(outs);
      settleOrPark(s, outs, settleOutcomes);
      heap.settled(outs.length);
    },
    onPublish: async (message, target, child, queue) => {
      s.children.record(message, child);
      await app.publish(message, target);
      // What a Web Worker's task sends, as the inline pool's and Celery's.
      const sentEvent = app.config.taskSendSentEvent;
      if (sentEvent) await app.events.sent(message, target, queue ?? target.routingKey);
    },
    onSent: (message, child) => s.children.record(message, child),
    onState: (seq, status, meta, final) => {
      const req = s.running.get(seq)?.req;
      // The task's one FAILURE store (Celery's, before its errbacks): with what it sent.
      const full = final && req ? withChildren(meta, s.children.take(req.id)) : meta;
      return storeState(s.backend, req, status, full);
    },
    onLost: (seqs, reason, notStarted) => settleLost(s, seqs, reason, notStarted),
    onTimeLimit: (seq, seconds, abandoned) => settleTimeLimit(s, seq, seconds, abandoned),
    onThreadLeak,
  };
}
