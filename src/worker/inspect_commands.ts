/**
 * The inspect and control commands a worker answers beyond the basics of
 * `remote_control.ts`: `active`, `reserved`, `scheduled`, `query_task`,
 * `stats`, `active_queues`, `conf`, `report`, `clock`, `hello`,
 * `time_limit`, `add_consumer`, `cancel_consumer`, `pool_grow`,
 * `pool_shrink`, `autoscale` — with Celery 5.2's reply shapes.
 *
 * @module
 */

import type { QueueBinding } from "../broker/port.ts";
import type { ControlRequest } from "../protocol/control.ts";
import { resultRepr } from "../protocol/repr.ts";
import { PyFloat } from "../protocol/json.ts";
import type { ScheduledInfo } from "../client/inspect.ts";
import type { RequestInfo } from "./inspect_replies.ts";
import { helloRevoked } from "./hello_revoked.ts";

/**
 * What the inspect commands read from, and act on: the worker.
 *
 * @example
 * ```ts
 * import type { WorkerInspection } from "@celeriac/celeriac/worker";
 * // A worker builds its own for its remote control (see runInspect).
 * const runningIds = (inspection: WorkerInspection) => inspection.active(false).map((t) => t.id);
 * ```
 */
export interface WorkerInspection {
  /** Tasks running (handed to the pool). */
  active(safe: boolean): RequestInfo[];
  /** Tasks received and not running yet (waiting for a rate-limit token). */
  reserved(safe: boolean): RequestInfo[];
  /** Tasks held for their ETA. */
  scheduled(safe: boolean): ScheduledInfo[];
  /**
   * The known tasks among `ids`: `[state, info]` with state `active` or `reserved`; as Celery
   * 5.2's, a task held for its ETA is left out until it comes due.
   */
  queryTask(ids: string[]): Record<string, [string, RequestInfo]>;
  /** The `stats` reply. */
  stats(): Record<string, unknown>;
  /** Queues consumed, as kombu describes them. */
  activeQueues(): Record<string, unknown>[];
  /** Settings under Celery's names. */
  conf(withDefaults: boolean): Record<string, unknown>;
  /** The `report` text. */
  report(): string;
  /** The Lamport clock. */
  clock(): number;
  /** Revoked ids with the unix time of their revocation. */
  revokedTimes(): Record<string, number>;
  /** Remember ids another node revoked (`hello` from a starting worker). */
  mergeRevoked(ids: string[]): void;
  /**
   * Set a task's time limits in seconds (null: none).
   *
   * @throws {RangeError} when the task is unknown to the worker
   */
  setTimeLimit(task: string, hard: number | null, soft: number | null): void;
  /** Start consuming a queue (bound to a named exchange when given); false when already consumed. */
  addConsumer(queue: string, binding?: QueueBinding): Promise<boolean>;
  /** Stop consuming a queue (resolves once the broker holds nothing from it); false when not consumed. */
  cancelConsumer(queue: string): Promise<boolean>;
  /**
   * Add (`n` > 0) or remove Web Workers.
   *
   * @throws {Error} when the pool cannot be resized (the inline pool)
   */
  resizePool(n: number): void;
  /**
   * Change the autoscale range (null keeps a bound); returns the range now,
   * `[max, min]`, or null when the worker does not autoscale. Absent: never.
   *
   * @throws {RangeError} when the range would not be max >= 1, max >= min >= 0
   */
  autoscale?(max: number | null, min: number | null): [number, number] | null;
  /** Whether the worker autoscales (then `pool_grow` / `pool_shrink` are refused). */
  autoscaling?(): boolean;
}

/** Whether a command is one of these. */
const COMMANDS = new Set([
  "active",
  "reserved",
  "scheduled",
  "query_task",
  "stats",
  "active_queues",
  "conf",
  "report",
  "clock",
  "hello",
  "time_limit",
  "add_consumer",
  "cancel_consumer",
  "pool_grow",
  "pool_shrink",
  "autoscale",
]);

/**
 * Whether `method` is an inspect command answered by {@link runInspect}.
 *
 * @example
 * ```ts
 * import { isInspectCommand } from "@celeriac/celeriac/worker";
 * isInspectCommand("active"); // true
 * ```
 *
 * @param method the command
 * @returns true for the commands of this module
 */
export function isInspectCommand(method: string): boolean {
  return COMMANDS.has(method);
}

function number(v: unknown): number | null {
  if (v === null || v === undefined || v === "") return null;
  const n = Number(v);
  return Number.isFinite(n) ? n : null;
}

/**
 * Run an inspect command; resolves with the reply body.
 *
 * @example
 * ```ts
 * import { runInspect, type WorkerInspection } from "@celeriac/celeriac/worker";
 * const clock = (inspection: WorkerInspection) =>
 *   runInspect({ method: "clock", arguments: {}, destination: null }, inspection, "celeriac@h");
 * // resolves with { clock: 42 }
 * ```
 *
 * @param req the request (its method satisfies {@link isInspectCommand})
 * @param w the worker
 * @param hostname the worker's node name
 * @returns the reply
 */
export async function runInspect(
  req: ControlRequest,
  w: WorkerInspection,
  hostname: string,
): Promise<unknown> {
  const args = req.arguments;
  switch (req.method) {
    case "active":
      return w.active(args.safe === true);
    case "reserved":
      return w.reserved(args.safe === true);
    case "scheduled":
      return w.scheduled(args.safe === true);
    case "query_task": {
      const raw = args.ids;
      const ids = (Array.isArray(raw) ? raw.flat() : [raw]).filter((x) => typeof x === "string");
      return w.queryTask(ids as string[]);
    }
    case "stats":
      return w.stats();
    case "active_queues":
      return w.activeQueues();
    case "conf":
      return w.conf(args.with_defaults === true);
    case "report":
      return { ok: w.report() };
    case "clock":
      return { clock: w.clock() };
    case "hello": {
      if (args.from_node === hostname) return null;
      const theirs = helloRevoked(args.revoked);
      if (theirs.ids.length) w.mergeRevoked(theirs.ids);
      if (theirs.error) return { error: theirs.error };
      const revoked: Record<string, [number, string]> = {};
      for (const [id, at] of Object.entries(w.revokedTimes())) revoked[id] = [at, id];
      return { revoked, clock: w.clock() };
    }
    case "time_limit": {
      try {
        w.setTimeLimit(String(args.task_name), number(args.hard), number(args.soft));
      } catch (err) {
        if (err instanceof RangeError) return { error: "unknown task" };
        throw err;
      }
      return { ok: "time limits set successfully" };
    }
    case "add_consumer": {
      const queue = args.queue;
      if (typeof queue !== "string" || !queue) return { error: "add_consumer needs a queue name" };
      const binding = consumerBinding(queue, args);
      if (typeof binding === "string") return { error: binding };
      const added = await w.addConsumer(queue, binding);
      return { ok: added ? `add consumer ${queue}` : `already consuming from ${queue}` };
    }
    case "cancel_consumer": {
      const queue = args.queue;
      if (typeof queue !== "string" || !queue) {
        return { error: "cancel_consumer needs a queue name" };
      }
      await w.cancelConsumer(queue);
      return { ok: `no longer consuming from ${queue}` };
    }
    case "pool_grow":
    case "pool_shrink": {
      if (w.autoscaling?.()) {
        // Celery 5.2's words: the autoscaler owns the pool size.
        return {
          error: `${req.method} is not supported with autoscale. Adjust autoscale range instead.`,
        };
      }
      // Celery's default N is 1; a negative N would resize the other way.
      // Only a number or its text is an N: Number(true) and Number([2]) are not.
      const given = typeof args.n === "number" || typeof args.n === "string";
      const n = args.n === undefined || args.n === null ? 1 : given ? number(args.n) : null;
      if (n === null || !Number.isInteger(n) || n < 1) {
        return {
          error: `${req.method} needs N, a whole number of Web Workers >= 1, got ${
            resultRepr(args.n)
          }`,
        };
      }
      w.resizePool(req.method === "pool_grow" ? n : -n);
      return { ok: req.method === "pool_grow" ? "pool will grow" : "pool will shrink" };
    }
    case "autoscale": {
      let range: [number, number] | null | undefined;
      try {
        range = w.autoscale?.(number(args.max), number(args.min));
      } catch (err) {
        if (err instanceof RangeError) return { error: err.message };
        throw err;
      }
      // Celery raises ValueError('Autoscale not enabled'); the pidbox replies with its repr.
      if (!range) return { error: "ValueError('Autoscale not enabled')" };
      return { ok: `autoscale now max=${range[0]} min=${range[1]}` };
    }
  }
  return { error: `KeyError('${req.method}')` };
}

/**
 * A {@link runInspect} reply with the numbers Celery 5.2 sends as Python
 * floats marked as such ({@link PyFloat}), so that whole ones are written
 * `1795490349.0`: the `time_start` of running tasks (`active`,
 * `query_task`; `reserved` and `scheduled` have `null`), the revoked
 * times of `hello`, and the time limits of `stats`' `pool.timeouts`
 * (`[1.0, 2.0]`: Celery's `--time-limit` / `--soft-time-limit` are floats;
 * `0` stays `0`, as Celery's `soft_timeout or 0`). Other replies are
 * returned as they are.
 *
 * @example
 * ```ts ignore
 * const reply = await runInspect(req, inspection, "celeriac@h");
 * encodeControlReply("celeriac@h", withPythonFloats(req.method, reply), { ticket, clock });
 * ```
 *
 * @param method the command
 * @param reply its reply
 * @returns the reply to encode
 */
export function withPythonFloats(method: string, reply: unknown): unknown {
  if (reply === null || typeof reply !== "object") return reply;
  switch (method) {
    case "active":
      return Array.isArray(reply) ? reply.map(floatStart) : reply;
    case "query_task": {
      const out: Record<string, [string, ReturnType<typeof floatStart>]> = {};
      for (
        const [id, [state, info]] of Object.entries(reply as Record<string, [string, RequestInfo]>)
      ) {
        out[id] = [state, floatStart(info)];
      }
      return out;
    }
    case "hello": {
      // An error reply (a revoked list of the wrong shape) has no `revoked` to convert.
      if (!("revoked" in reply)) return reply;
      const { revoked, ...rest } = reply as { revoked: Record<string, [number, string]> };
      const times: Record<string, [PyFloat, string]> = {};
      for (const [id, [at, same]] of Object.entries(revoked)) times[id] = [new PyFloat(at), same];
      return { revoked: times, ...rest };
    }
    case "stats": {
      const stats = reply as { pool?: { timeouts?: unknown } };
      const timeouts = stats.pool?.timeouts;
      if (!Array.isArray(timeouts)) return reply;
      const floats = timeouts.map((t) => typeof t === "number" && t !== 0 ? new PyFloat(t) : t);
      return { ...stats, pool: { ...stats.pool, timeouts: floats } };
    }
  }
  return reply;
}

function floatStart(info: RequestInfo): Omit<RequestInfo, "time_start"> & {
  time_start: number | PyFloat | null;
} {
  return typeof info.time_start === "number"
    ? { ...info, time_start: new PyFloat(info.time_start) }
    : info;
}

/**
 * The binding `add_consumer` asks for, as Celery's worker reads it: none
 * without an exchange or a routing key; else exchange (default the queue
 * name), type (default direct) and key (default the queue name). A string
 * says why it is refused.
 */
function consumerBinding(
  queue: string,
  args: Record<string, unknown>,
): QueueBinding | undefined | string {
  const { exchange, exchange_type: type, routing_key: key } = args;
  if (!exchange && !key) return undefined;
  if (type && type !== "direct" && type !== "topic") {
    return `add_consumer: exchange type ${JSON.stringify(type)} is not supported (direct or topic)`;
  }
  return {
    exchange: typeof exchange === "string" && exchange ? exchange : queue,
    type: type === "topic" ? "topic" : "direct",
    routingKey: typeof key === "string" && key ? key : queue,
  };
}
