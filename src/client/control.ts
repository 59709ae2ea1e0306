/**
 * Remote control from the client side (Celery's `app.control`): revoke
 * tasks on every worker, Celeriac or Python.
 *
 * @module
 */

import type { Broker } from "../broker/port.ts";
import { LamportClock } from "../protocol/clock.ts";
import {
  CAST_TIMEOUT,
  controlExpires,
  type ControlRequest,
  encodeControlRequest,
  PIDBOX_EXCHANGE,
  REVOKE_STORED_ARG,
} from "../protocol/control.ts";
import { Inspect } from "./inspect.ts";
import { call, type NodeReply, type ReplyOptions } from "./replies.ts";
import { revokeParts } from "./revoke_parts.ts";

/** How long revoked ids are remembered (Celery's `REVOKES_MAX_AGE`, 3 hours). */
const REVOKE_TTL_MS = 10_800_000;

/**
 * Options of {@link Control.revoke}.
 *
 * @example Stopping a running task
 * ```ts
 * import type { RevokeOptions } from "@celeriac/celeriac";
 * const options: RevokeOptions = { terminate: true, signal: "SIGKILL" };
 * ```
 */
export interface RevokeOptions {
  /** Also stop the task if it is running. Default false. */
  terminate?: boolean;
  /**
   * The signal a Python prefork worker sends to the process running it
   * (Celeriac workers end the task's Web Worker). Default `SIGTERM`.
   */
  signal?: string;
  /** Node names to address; default every worker. */
  destination?: string[];
  /** Wait for the workers' replies (Celery's `reply=True`). Default false. */
  reply?: boolean;
  /** With `reply`: seconds to wait for them. Default 1 (Celery's). */
  timeout?: number;
  /**
   * With `reply`: stop waiting once this many workers replied. Default: the
   * number of `destination`s, else wait the whole `timeout`.
   */
  limit?: number;
}

/**
 * Sends remote-control commands on the `celery.pidbox` fanout.
 *
 * @example Revoking a task
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "kv://:memory:" });
 * const result = await app.sendTask("reports.build", [2024], { countdown: 3600 });
 * await app.control.revoke(result.id); // skipped by every worker
 * await app.close();
 * ```
 */
export class Control {
  readonly #broker: () => Promise<Broker>;
  readonly #clock = new LamportClock();
  readonly #oid: string;
  readonly #closing: () => AbortSignal | undefined;

  /**
   * Use `app.control`.
   *
   * @param broker opens the app's broker
   * @param oid this client's reply-queue id (default: a new one)
   * @param closing the app's signal that aborts when it closes: a call
   *   waiting for replies then returns those so far (default: none)
   */
  constructor(
    broker: () => Promise<Broker>,
    oid: string = crypto.randomUUID(),
    closing: () => AbortSignal | undefined = () => undefined,
  ) {
    this.#broker = broker;
    this.#oid = oid;
    this.#closing = closing;
  }

  /**
   * Broadcast a command and collect the replies (a Celery "call"): one
   * `{ node: reply }` object per worker that answered within `timeout`.
   * `app.close()` (as `signal`) ends the wait: the replies so far are returned.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const replies = await app.control.call("rate_limit", { task_name: "t", rate_limit: "5/s" });
   * // [{ "celeriac@web1": { ok: "new rate limit set successfully" } }]
   * ```
   *
   * @param method command name
   * @param args command arguments
   * @param options timeout (seconds, default 1), destination, limit, signal
   * @returns the replies; empty when no worker answered
   */
  async call<T = unknown>(
    method: string,
    args: Record<string, unknown> = {},
    options: ReplyOptions = {},
  ): Promise<NodeReply<T>[]> {
    const req: ControlRequest = {
      method,
      arguments: args,
      destination: options.destination ?? null,
    };
    const closing = this.#closing();
    const signal = closing && options.signal
      ? AbortSignal.any([closing, options.signal])
      : closing ?? options.signal;
    const broker = await this.#broker();
    return await call(broker, this.#clock, this.#oid, req, { ...options, signal }) as NodeReply<
      T
    >[];
  }

  /**
   * Ping workers: `[{ node: { ok: "pong" } }, ...]`.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const alive = (await app.control.ping({ timeout: 1 })).flatMap(Object.keys);
   * ```
   *
   * @param options timeout, destination, limit
   * @returns one reply per worker that answered
   */
  ping(options: ReplyOptions = {}): Promise<NodeReply<{ ok: string }>[]> {
    return this.call("ping", {}, options);
  }

  /**
   * Inspect workers: `active`, `reserved`, `scheduled`, `stats`, ...
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const active = await app.control.inspect({ timeout: 2 }).active();
   * ```
   *
   * @param options timeout, destination, limit of every command sent
   * @returns the inspector
   */
  inspect(options: ReplyOptions = {}): Inspect {
    return new Inspect((req, o) => this.call(req.method, req.arguments, o), options);
  }

  /**
   * Broadcast a command. Without `reply` nothing is awaited (a Celery
   * "cast"); with `reply: true` the replies are collected as by
   * {@link Control.call}.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * await app.control.broadcast("shutdown", {}, { destination: ["celeriac@old-host"] });
   * const replies = await app.control.broadcast("clock", {}, { reply: true, timeout: 2 });
   * ```
   *
   * @param method command name
   * @param args command arguments
   * @param options `destination`: node names (default every worker); `reply`, `timeout`, `limit`
   * @returns the replies with `reply: true`
   */
  broadcast(
    method: string,
    args: Record<string, unknown>,
    options: ReplyOptions & { reply: true },
  ): Promise<NodeReply[]>;
  /**
   * Broadcast a command without waiting for replies (a Celery "cast").
   *
   * @param method command name
   * @param args command arguments
   * @param options `destination`: node names; default every worker
   */
  broadcast(
    method: string,
    args?: Record<string, unknown>,
    options?: { destination?: string[]; reply?: false },
  ): Promise<void>;
  async broadcast(
    method: string,
    args: Record<string, unknown> = {},
    options: ReplyOptions & { reply?: boolean } = {},
  ): Promise<NodeReply[] | void> {
    if (options.reply) return await this.call(method, args, options);
    const req: ControlRequest = {
      method,
      arguments: args,
      destination: options.destination ?? null,
    };
    const message = encodeControlRequest(req, {
      clock: this.#clock.forward(),
      expires: controlExpires(CAST_TIMEOUT),
    });
    await (await this.#broker()).broadcast(PIDBOX_EXCHANGE, message);
  }

  /**
   * Change the autoscale range of workers run with `--autoscale` (Celery's
   * `autoscale` command); the pool moves into the new range at once.
   * Replies are collected (Celery's `reply=True`): `{ ok: "autoscale now
   * max=10 min=3" }`, or `{ error: "ValueError('Autoscale not enabled')" }`
   * from a worker that does not autoscale.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * await app.control.autoscale(10, 3, { destination: ["celeriac@web1"] });
   * ```
   *
   * @param max the most Web Workers (processes on a Python worker)
   * @param min the fewest
   * @param options timeout (seconds, default 1), destination, limit
   * @returns one reply per worker that answered
   */
  autoscale(
    max: number,
    min: number,
    options: ReplyOptions = {},
  ): Promise<NodeReply<{ ok?: string; error?: string }>[]> {
    return this.call("autoscale", { max, min }, options);
  }

  /**
   * Add `n` Web Workers (processes on a Python worker) to the pool of
   * workers (Celery's `pool_grow`); refused by autoscaling workers, whose
   * range the autoscaler owns. Replies are collected.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * await app.control.poolGrow(2, { destination: ["celeriac@web1"] }); // [{ "celeriac@web1": { ok: "pool will grow" } }]
   * ```
   *
   * @param n how many (default 1)
   * @param options timeout (seconds, default 1), destination, limit
   * @returns one reply per worker that answered
   */
  poolGrow(
    n = 1,
    options: ReplyOptions = {},
  ): Promise<NodeReply<{ ok?: string; error?: string }>[]> {
    return this.call("pool_grow", { n }, options);
  }

  /**
   * Retire `n` Web Workers of the pool of workers (Celery's `pool_shrink`);
   * they finish their running tasks first. Refused by autoscaling workers.
   * Replies are collected.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * await app.control.poolShrink(1); // [{ "celeriac@web1": { ok: "pool will shrink" } }]
   * ```
   *
   * @param n how many (default 1)
   * @param options timeout (seconds, default 1), destination, limit
   * @returns one reply per worker that answered
   */
  poolShrink(
    n = 1,
    options: ReplyOptions = {},
  ): Promise<NodeReply<{ ok?: string; error?: string }>[]> {
    return this.call("pool_shrink", { n }, options);
  }

  /**
   * Change a task's rate limit on the workers (Celery's `rate_limit`
   * command); `null` removes it.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * await app.control.rateLimit("tasks.scrape", "30/m");
   * ```
   *
   * @param taskName the task
   * @param rate `"10/s"`, `"100/m"`, `"1000/h"`, a number per second, or `null`
   * @param options `destination`: node names; default every worker
   */
  rateLimit(
    taskName: string,
    rate: string | number | null,
    options?: { destination?: string[]; reply?: false },
  ): Promise<void>;
  /**
   * Change a task's rate limit and collect the workers' replies (Celery's
   * `rate_limit(..., reply=True)`).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * await app.control.rateLimit("tasks.scrape", "30/m", { reply: true, timeout: 2 });
   * // [{ "celeriac@web1": { ok: "new rate limit set successfully" } }]
   * ```
   *
   * @param taskName the task
   * @param rate `"10/s"`, `"100/m"`, `"1000/h"`, a number per second, or `null`
   * @param options `reply: true`; timeout (seconds, default 1), destination, limit, signal
   * @returns one reply per worker that answered
   */
  rateLimit(
    taskName: string,
    rate: string | number | null,
    options: ReplyOptions & { reply: true },
  ): Promise<NodeReply<{ ok?: string; error?: string }>[]>;
  async rateLimit(
    taskName: string,
    rate: string | number | null,
    options: ReplyOptions & { reply?: boolean } = {},
  ): Promise<NodeReply<{ ok?: string; error?: string }>[] | void> {
    const args = { task_name: taskName, rate_limit: rate ?? 0 };
    if (options.reply) return await this.call("rate_limit", args, options);
    await this.broadcast("rate_limit", args, { destination: options.destination });
  }

  /**
   * Revoke tasks: workers skip them when they arrive, and with `terminate`
   * stop them if running; the state becomes REVOKED. The ids are broadcast
   * as Celery does (Python workers obey too) and remembered in the broker
   * for 3 hours, so Celeriac workers that start later skip them as well
   * (stored once, by the client: the request says so, and Celeriac workers
   * do not store them again). With a `destination`, only the named nodes
   * get them, and the ids are remembered only once one of them has them
   * (a worker stores the ids it is sent), as Celery's new workers learn
   * them from running ones. On a broker that refuses big messages (KV:
   * `maxMessageBytes`), many ids go as several `revoke` requests, each
   * under the limit, with the same options (with `reply`, the replies to
   * every one).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const [id1, id2, id3] = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
   * await app.control.revoke([id1, id2], { terminate: true });
   * const replies = await app.control.revoke(id3, { reply: true, timeout: 2 });
   * // [{ "celeriac@web1": { ok: "tasks id3 flagged as revoked" } }]
   * ```
   *
   * @param ids one task id or several
   * @param options terminate, signal, destination; `reply`, `timeout` and `limit` to collect replies
   * @returns with `reply`, one reply per worker that answered; else none
   */
  async revoke(
    ids: string | readonly string[],
    options: RevokeOptions = {},
  ): Promise<NodeReply<{ ok?: string; error?: string }>[]> {
    const list = typeof ids === "string" ? [ids] : [...ids];
    if (list.length === 0) return [];
    // Addressed to some nodes, the ids are theirs to remember (each stores what it is sent):
    // stored here, every worker starting later would skip them, also with no such node.
    const stored = !options.destination;
    const broker = await this.#broker();
    if (stored) {
      const expiresAt = new Date(Date.now() + REVOKE_TTL_MS);
      await broker.addRevoked(list.map((id) => ({ id, expiresAt })));
    }
    const args = {
      terminate: options.terminate ?? false,
      signal: options.signal ?? "SIGTERM",
      // Stored once here: the workers need not store them again (Python ones ignore it).
      ...(stored ? { [REVOKE_STORED_ARG]: true } : {}),
    };
    const { destination, timeout, limit } = options;
    const parts = revokeParts(list, args, destination ?? null, broker.maxMessageBytes);
    const one = (taskId: string | string[]) => ({ task_id: taskId, ...args });
    if (parts.length === 1) {
      const whole = one(typeof ids === "string" ? ids : list);
      if (options.reply) return await this.call("revoke", whole, { destination, timeout, limit });
      await this.broadcast("revoke", whole, { destination });
      return [];
    }
    // Too big for one message of this broker: a revoke per part, the replies to each gathered.
    if (options.reply) {
      const replies = await Promise.all(
        parts.map((part) => this.call("revoke", one(part), { destination, timeout, limit })),
      );
      return replies.flat() as NodeReply<{ ok?: string; error?: string }>[];
    }
    for (const part of parts) await this.broadcast("revoke", one(part), { destination });
    return [];
  }
}
