/**
 * `app.control.inspect()`: ask workers what they are doing, Celery's
 * `Inspect` in TypeScript. Every method broadcasts one command, waits up to
 * `timeout` seconds, and resolves with the replies by node name (empty when
 * no worker answered).
 *
 * @module
 */

import type { ControlRequest } from "../protocol/control.ts";
import { flattenReplies, type NodeReply, type ReplyOptions } from "./replies.ts";

/**
 * A task as workers describe it in `active`, `reserved`, `scheduled` and
 * `queryTask` replies.
 *
 * @example
 * ```ts
 * import { Celery, type TaskInfo } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const running: TaskInfo[] = Object.values(await app.control.inspect().active()).flat();
 * ```
 */
export interface TaskInfo {
  /** Task id. */
  id: string;
  /** Task name. */
  name: string;
  /** Positional arguments (a repr string with `safe`). */
  args: unknown;
  /** Keyword arguments (a repr string with `safe`). */
  kwargs: unknown;
  /** Task name (Celery's `type`). */
  type: string;
  /** The worker's node name. */
  hostname: string;
  /** Unix seconds it started, or null. */
  time_start: number | null;
  /** Whether its message is acknowledged. */
  acknowledged: boolean;
  /** Where its message came from. */
  delivery_info: { exchange: string; routing_key: string; priority: number; redelivered: unknown };
  /** Process running it, or null. */
  worker_pid: number | null;
}

/** A task held for its ETA, in `scheduled` replies. */
export interface ScheduledInfo {
  /** ETA, ISO 8601. */
  eta: string | null;
  /** Timer priority. */
  priority: number;
  /** The task. */
  request: TaskInfo;
}

/**
 * Sends one command and merges the replies into `{ node: reply }`.
 *
 * @internal
 */
export type Caller = (req: ControlRequest, options: ReplyOptions) => Promise<NodeReply[]>;

/**
 * Inspect workers (Celery's `app.control.inspect()`).
 *
 * @example Listing what runs, everywhere
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const inspect = app.control.inspect({ timeout: 2 });
 * for (const [node, tasks] of Object.entries(await inspect.active())) {
 *   console.log(node, tasks.map((t) => `${t.name}[${t.id}]`));
 * }
 * ```
 */
export class Inspect {
  readonly #call: Caller;
  readonly #options: ReplyOptions;

  /**
   * Use `app.control.inspect(options)`.
   *
   * @param call sends a command and collects replies
   * @param options timeout, destination, limit
   */
  constructor(call: Caller, options: ReplyOptions = {}) {
    this.#call = call;
    this.#options = options;
  }

  async #ask<T>(method: string, args: Record<string, unknown> = {}): Promise<Record<string, T>> {
    const replies = await this.#call(
      { method, arguments: args, destination: this.#options.destination ?? null },
      this.#options,
    );
    return flattenReplies(replies) as Record<string, T>;
  }

  /**
   * Tasks running.
   *
   * @param options `safe`: arguments as repr strings
   * @returns node → tasks
   */
  active(options: { safe?: boolean } = {}): Promise<Record<string, TaskInfo[]>> {
    return this.#ask("active", { safe: options.safe ?? null });
  }

  /**
   * Tasks received and waiting to run.
   *
   * @returns node → tasks
   */
  reserved(): Promise<Record<string, TaskInfo[]>> {
    return this.#ask("reserved");
  }

  /**
   * Tasks held for their ETA.
   *
   * @returns node → tasks
   */
  scheduled(): Promise<Record<string, ScheduledInfo[]>> {
    return this.#ask("scheduled");
  }

  /**
   * Where these tasks are: `["active" | "reserved", info]`. A task held for its ETA is left
   * out until it comes due, as by Celery 5.2's workers (`scheduled()` lists those).
   *
   * @param ids task ids
   * @returns node → id → [state, info]
   */
  queryTask(...ids: string[]): Promise<Record<string, Record<string, [string, TaskInfo]>>> {
    return this.#ask("query_task", { ids });
  }

  /**
   * Counters, pool, broker connection, uptime.
   *
   * @returns node → stats
   */
  stats(): Promise<Record<string, Record<string, unknown>>> {
    return this.#ask("stats");
  }

  /**
   * Queues consumed, as kombu describes them.
   *
   * @returns node → queues
   */
  activeQueues(): Promise<Record<string, Record<string, unknown>[]>> {
    return this.#ask("active_queues");
  }

  /**
   * Registered task names, each with the attributes asked for that it has
   * (`tasks.add [rate_limit=10/s time_limit=20]`, Celery's `taskinfoitems`).
   *
   * @param items task attributes by Celery's names (`time_limit`, `soft_time_limit`,
   *   `rate_limit`, ...); default none, which workers read as `exchange`, `routing_key`, `rate_limit`
   * @returns node → names
   */
  registered(items: readonly string[] = []): Promise<Record<string, string[]>> {
    return this.#ask("registered", { taskinfoitems: [...items] });
  }

  /**
   * Revoked task ids.
   *
   * @returns node → ids
   */
  revoked(): Promise<Record<string, string[]>> {
    return this.#ask("revoked");
  }

  /**
   * Settings (non-default ones unless `withDefaults`).
   *
   * @param withDefaults include defaults
   * @returns node → settings
   */
  conf(withDefaults = false): Promise<Record<string, Record<string, unknown>>> {
    return this.#ask("conf", { with_defaults: withDefaults });
  }

  /**
   * The worker's report text.
   *
   * @returns node → `{ ok: text }`
   */
  report(): Promise<Record<string, { ok: string }>> {
    return this.#ask("report");
  }

  /**
   * Lamport clocks.
   *
   * @returns node → `{ clock }`
   */
  clock(): Promise<Record<string, { clock: number }>> {
    return this.#ask("clock");
  }

  /**
   * Ping.
   *
   * @returns node → `{ ok: "pong" }`
   */
  ping(): Promise<Record<string, { ok: string }>> {
    return this.#ask("ping");
  }
}
