/**
 * The worker's answers to inspect commands ({@link WorkerInspection}),
 * read from its shared state and task registries.
 *
 * @module
 */

import type { QueueBinding } from "../broker/port.ts";
import { CELERIAC_VERSION } from "../client/version.ts";
import type { WorkerInspection } from "./inspect_commands.ts";
import {
  brokerInfo,
  confReply,
  queueInfo,
  reportText,
  requestInfo,
  scheduledInfo,
} from "./inspect_replies.ts";
import { REVOKE_TTL_MS } from "./revoked_ids.ts";
import type { TaskRegistries } from "./task_registries.ts";
import { processRusage } from "./rusage.ts";
import type { WorkerState } from "./worker_state.ts";

/** What the inspection needs from the worker besides its state. */
export interface InspectionHost {
  /** The queues consumed now. */
  queues(): readonly string[];
  /** The binding `add_consumer` gave a consumed queue, if any. */
  binding(queue: string): QueueBinding | undefined;
  /** Start consuming a queue (bound to a named exchange when given); false when already consumed. */
  addConsumer(queue: string, binding?: QueueBinding): Promise<boolean>;
  /** Stop consuming a queue (resolves once the broker holds nothing from it); false when not consumed. */
  cancelConsumer(queue: string): Promise<boolean>;
  /** Unix milliseconds the worker started. */
  startedAt: number;
}

/**
 * Build the inspection of a worker.
 *
 * @param s the worker's state
 * @param registries its task registries
 * @param host queues, consumers, start time
 * @returns the inspection
 */
export function workerInspection(
  s: WorkerState,
  registries: TaskRegistries,
  host: InspectionHost,
): WorkerInspection {
  const hostname = s.hostname;
  const maxDecompressed = s.options.maxDecompressedSize;
  return {
    active: (safe) =>
      registries.active().map((t) =>
        requestInfo(t, { hostname, safe, started: true, maxDecompressed })
      ),
    reserved: (safe) =>
      registries.reserved().map((t) =>
        requestInfo(t, { hostname, safe, started: false, maxDecompressed })
      ),
    scheduled: (safe) =>
      registries.scheduled().map((t) => scheduledInfo(t, hostname, safe, maxDecompressed)),
    queryTask: (ids) => {
      const wanted = new Set(ids);
      const out: Record<string, [string, ReturnType<typeof requestInfo>]> = {};
      for (const t of registries.active()) {
        if (wanted.has(t.req.id)) {
          out[t.req.id] = [
            "active",
            requestInfo(t, { hostname, safe: false, started: true, maxDecompressed }),
          ];
        }
      }
      // Not the tasks held for their ETA: Celery 5.2's worker reserves a task only once it is
      // due, so its query_task leaves them out (as an unknown id) until then.
      for (const t of registries.reserved()) {
        if (wanted.has(t.req.id) && !out[t.req.id]) {
          out[t.req.id] = [
            "reserved",
            requestInfo(t, { hostname, safe: false, started: false, maxDecompressed }),
          ];
        }
      }
      return out;
    },
    stats: () => {
      const o = s.options;
      const inline = (o.pool ?? "threads") === "inline";
      return {
        total: registries.totals(),
        pid: Deno.pid,
        clock: String(s.clock.value),
        uptime: Math.floor((Date.now() - host.startedAt) / 1000),
        pool: {
          "max-concurrency": s.pool.concurrency,
          // Web Workers have no pid of their own: one entry per Web Worker, the pid they run in.
          processes: Array.from({ length: s.pool.concurrency }, () => Deno.pid),
          "max-tasks-per-child": o.maxTasksPerChild ?? "N/A",
          "put-guarded-by-semaphore": false,
          timeouts: [o.softTimeLimit ?? 0, o.timeLimit ?? 0],
          implementation: inline ? "celeriac:InlinePool" : "celeriac:ThreadPool",
          slots: s.pool.capacity,
          // Threads of terminated Web Workers still running (thread_leaks.ts); null: unknown.
          "leaked-threads": s.pool.leakedThreads?.map((l) => ({
            task: l.task,
            id: l.id,
            tid: l.tid,
            "terminated-at": l.terminatedAt / 1000,
            "cpu-seconds": l.cpuSeconds,
            busy: Math.round(l.busy * 100) / 100,
          })) ?? null,
        },
        broker: brokerInfo(s.app.config.broker),
        prefetch_count: s.pool.capacity,
        ...(s.autoscaler ? { autoscaler: s.autoscaler.info() } : {}),
        rusage: processRusage(),
      };
    },
    activeQueues: () => host.queues().map((q) => queueInfo(q, host.binding(q))),
    conf: (withDefaults) => confReply(s.app.config, withDefaults),
    report: () => reportText(s.app.config, CELERIAC_VERSION),
    clock: () => s.clock.value,
    revokedTimes: () => {
      const out: Record<string, number> = {};
      for (const [id, until] of s.revoked.entries()) out[id] = (until - REVOKE_TTL_MS) / 1000;
      return out;
    },
    mergeRevoked: (ids) => s.revoked.add(ids, Date.now() + REVOKE_TTL_MS),
    setTimeLimit: (task, hard, soft) => {
      if (!s.app.tasks.get(task)?.handler) throw new RangeError(`unknown task ${task}`);
      s.timeLimits.set(task, { timeLimit: hard, softTimeLimit: soft });
    },
    addConsumer: (queue, binding) => host.addConsumer(queue, binding),
    cancelConsumer: (queue) => host.cancelConsumer(queue),
    resizePool: (n) => {
      s.pool.resize(n);
      s.wake();
    },
    autoscale: (max, min) => s.autoscaler?.update(max, min) ?? null,
    autoscaling: () => s.autoscaler !== null,
  };
}
