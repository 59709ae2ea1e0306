/**
 * The worker's side of remote control: listen on the `celery.pidbox`
 * fanout, run the commands addressed to this node and reply as a Celery
 * 5.2 worker does, so `celery control` / `celery inspect` and Celeriac's
 * `app.control` reach Celeriac workers.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Broker } from "../broker/port.ts";
import {
  addressedTo,
  type ControlRequest,
  decodeControlRequest,
  encodeControlReply,
  PIDBOX_EXCHANGE,
  REVOKE_STORED_ARG,
  revokedIds,
} from "../protocol/control.ts";
import { LamportClock } from "../protocol/clock.ts";
import { ControlPatternError } from "../protocol/errors.ts";
import { call } from "../client/replies.ts";
import {
  isInspectCommand,
  runInspect,
  withPythonFloats,
  type WorkerInspection,
} from "./inspect_commands.ts";
import type { Message } from "../protocol/message.ts";
import { resultRepr } from "../protocol/repr.ts";
import { isSignalName, signalNumber } from "../protocol/signal_names.ts";

const log = getLogger(["celeriac", "worker", "control"]);

/**
 * What remote-control commands act on: the worker.
 *
 * @example A target for tests
 * ```ts
 * import type { ControlTarget } from "@celeriac/celeriac/worker";
 * const revoked = new Set<string>();
 * const target: ControlTarget = {
 *   hostname: "celeriac@test",
 *   revoke: (ids) => { ids.forEach((id) => revoked.add(id)); return []; },
 *   revoked: () => [...revoked],
 *   registered: () => ["tasks.add"],
 *   setRateLimit: () => {},
 *   shutdown: () => {},
 * };
 * ```
 */
export interface ControlTarget {
  /** The node name commands are addressed to. */
  readonly hostname: string;
  /**
   * Revoke task ids; with `terminate`, also stop them if running;
   * `stored`: the client stored them in the broker already (the request
   * carried `REVOKE_STORED_ARG`), so they are not stored again; `signum`:
   * the terminate's signal number, reported in `task-revoked` (default 15).
   * Returns the ids that were running and are being terminated.
   */
  revoke(ids: string[], terminate: boolean, stored?: boolean, signum?: number): string[];
  /** The ids in the revoked set. */
  revoked(): string[];
  /**
   * Registered task names, each followed by the attributes asked for that it has
   * (` [rate_limit=… time_limit=…]`); none asked means Celery's default items.
   */
  registered(items?: readonly string[]): string[];
  /**
   * Set or remove (`null`) a task's rate limit.
   *
   * @throws {RangeError} when the task is unknown to the worker
   * @throws {TypeError} when the rate is malformed
   */
  setRateLimit(name: string, rate: string | number | null): void;
  /** Begin a warm shutdown. */
  shutdown(): void;
  /**
   * Switch task events on or off (`enable_events` / `disable_events`).
   * Returns false when they already were. Absent: the commands are unknown.
   */
  setTaskEvents?(on: boolean): boolean;
  /** Send a `worker-heartbeat` event now (the `heartbeat` command). */
  heartbeat?(): void;
  /** What `inspect` commands read; absent: those commands are unknown. */
  inspect?: WorkerInspection;
}

/** No reply is sent for this command (`shutdown`: Celery's worker stops before replying). */
const NO_REPLY = Symbol("no reply");

/** Commands monitors repeat every few seconds; logged at DEBUG (inspect commands too). */
const ROUTINE: ReadonlySet<string> = new Set(["enable_events", "disable_events", "heartbeat"]);

/**
 * Runs one request against a target; returns the reply body for this node.
 *
 * @example
 * ```ts
 * import { type ControlTarget, handleControl } from "@celeriac/celeriac/worker";
 * declare const target: ControlTarget;
 * handleControl({ method: "ping", arguments: {}, destination: null }, target); // { ok: "pong" }
 * ```
 *
 * @param req the request
 * @param target the worker
 * @returns the reply (`undefined` for commands that send none)
 */
export function handleControl(req: ControlRequest, target: ControlTarget): unknown {
  const out = run(req, target);
  return out === NO_REPLY ? undefined : out;
}

function run(req: ControlRequest, target: ControlTarget): unknown {
  const args = req.arguments;
  switch (req.method) {
    case "ping":
      return { ok: "pong" };
    case "revoke":
    case "terminate": {
      const ids = revokedIds(args);
      const terminate = req.method === "terminate" || args.terminate === true;
      const signal = args.signal || "SIGTERM"; // as Celery: `signal or TERM_SIGNAME`
      const number = typeof signal === "number" && Number.isInteger(signal) && signal >= 1 &&
        signal <= 64;
      if (terminate && !isSignalName(signal) && !number) {
        // Celery's signum() refuses a name the same way, os.kill() a number that is no signal:
        // an error reply, the task left running.
        return {
          error: `ValueError('unknown signal ${
            JSON.stringify(signal)
          }: give a name such as SIGTERM, SIGKILL or KILL, in upper case, or a number 1 to 64')`,
        };
      }
      const killed = target.revoke(
        ids,
        terminate,
        args[REVOKE_STORED_ARG] === true,
        signalNumber(signal),
      );
      if (terminate) {
        return {
          ok: killed.length ? `terminate: ${killed.join(", ")}` : "terminate: tasks unknown",
        };
      }
      return { ok: `tasks ${ids.join(", ")} flagged as revoked` };
    }
    case "revoked":
      return target.revoked();
    case "registered": {
      const items = args.taskinfoitems;
      return target.registered(
        Array.isArray(items) ? items.filter((i): i is string => typeof i === "string") : undefined,
      );
    }
    case "rate_limit": {
      const rate = args.rate_limit;
      const off = rate === null || rate === undefined || rate === "" || rate === 0 || rate === "0";
      try {
        target.setRateLimit(String(args.task_name), off ? null : rate as string | number);
      } catch (err) {
        if (err instanceof RangeError) return { error: "unknown task" };
        return { error: `Invalid rate limit string: ${(err as Error).message}` };
      }
      return { ok: off ? "rate limit disabled successfully" : "new rate limit set successfully" };
    }
    case "shutdown":
      target.shutdown();
      return NO_REPLY;
    case "heartbeat":
      // Celery 5.2's worker replies None when asked for a reply (`celery control heartbeat`);
      // a monitor's wakeup asks for none, and gets none (no reply_to).
      target.heartbeat?.();
      return null;
    case "enable_events":
    case "disable_events": {
      if (!target.setTaskEvents) return { error: `KeyError('${req.method}')` };
      const on = req.method === "enable_events";
      const changed = target.setTaskEvents(on);
      const what = on ? "enabled" : "disabled";
      return { ok: changed ? `task events ${what}` : `task events already ${what}` };
    }
    default:
      return { error: `KeyError('${req.method}')` };
  }
}

/**
 * A worker's pidbox: subscribes to `celery.pidbox` under a queue of its
 * own, `<hostname>.<random>.celery.pidbox`, and answers requests that ask
 * for replies.
 *
 * @example
 * ```ts
 * import { type ControlTarget, RemoteControl } from "@celeriac/celeriac/worker";
 * import type { Broker } from "@celeriac/celeriac/protocol";
 * async function answer(broker: Broker, target: ControlTarget, signal: AbortSignal) {
 *   const pidbox = new RemoteControl(broker, target);
 *   await pidbox.start(signal);
 * }
 * ```
 */
export class RemoteControl {
  readonly #broker: Broker;
  readonly #target: ControlTarget;
  readonly #clock: LamportClock;

  /**
   * Configure the pidbox; nothing is received before {@link RemoteControl.start}.
   *
   * @param broker where requests arrive and replies go
   * @param target the worker commands act on
   * @param clock the worker's Lamport clock (default: a clock of its own)
   */
  constructor(broker: Broker, target: ControlTarget, clock: LamportClock = new LamportClock()) {
    this.#broker = broker;
    this.#target = target;
    this.#clock = clock;
  }

  /**
   * Listen until `signal` aborts; resolves once subscribed.
   *
   * @param signal stops listening
   */
  async start(signal: AbortSignal): Promise<void> {
    await this.#broker.subscribe(PIDBOX_EXCHANGE, (m) => this.#onMessage(m), {
      signal,
      // kombu's name is `<hostname>.celery.pidbox`: on RabbitMQ two workers of one name then
      // share one queue, and each request reaches only one of them (a revoke, a shutdown, the
      // start-up check for a duplicate name). A queue of this process's own gets every request.
      queue: `${this.#target.hostname}.${crypto.randomUUID().slice(0, 8)}.${PIDBOX_EXCHANGE}`,
    });
  }

  /**
   * Whether another worker answers to this one's node name, asked as
   * Celery's start-up `mingle` asks: a `hello` from this node to this
   * node's name, waited for 1 s. Its own reply and any other's come back:
   * two or more mean a duplicate, whose replies to remote control, events
   * and dashboard rows are taken for this worker's. Call once
   * {@link RemoteControl.start} resolved; `false` when `signal` aborts first
   * or the broker fails.
   *
   * @param signal stops waiting
   * @returns whether another node has the same name
   */
  async nameTaken(signal: AbortSignal): Promise<boolean> {
    const name = this.#target.hostname;
    try {
      const replies = await call(this.#broker, this.#clock, crypto.randomUUID(), {
        method: "hello",
        arguments: { from_node: name, revoked: {} },
        destination: [name],
      }, { timeout: 1, limit: 2, signal });
      return replies.filter((r) => Object.hasOwn(r, name)).length > 1;
    } catch (err) {
      log.debug("Cannot check whether another node is named {name}: {error}", {
        name,
        error: (err as Error).message,
      });
      return false;
    }
  }

  #onMessage(message: Message): void {
    // kombu moves the clock on for every request, before it matches the node name or reads
    // the method: a request this node refuses (an unknown matcher, no method) or is not
    // addressed by still counts.
    this.#clock.adjust(message.headers.clock);
    let req: ControlRequest | undefined;
    try {
      req = decodeControlRequest(message);
      if (!addressedTo(req, this.#target.hostname)) return;
    } catch (err) {
      log.error("Ignored a malformed remote-control request: {error}", {
        error: (err as Error).message,
      });
      // A pattern refused unmatched (too long, or one that could backtrack
      // for good) is answered, so the caller learns why instead of waiting.
      if (req && err instanceof ControlPatternError) {
        this.#reply(req, { error: `${err.name}('${err.message}')` });
      }
      return;
    }
    // Monitors (the dashboard, Flower) send these every few seconds: what
    // changes is logged where it changes (e.g. "Task events enabled").
    const line = "Remote control: {method} {args}";
    // Python's repr, cut as Celery cuts argsrepr: arguments may hold integers beyond 2^53
    // (bigint, which JSON.stringify refuses) or megabytes of text.
    const props = { method: req.method, args: resultRepr(req.arguments) };
    if (ROUTINE.has(req.method) || isInspectCommand(req.method)) log.debug(line, props);
    else log.info(line, props);
    this.#answer(req).then((reply) => this.#reply(req, reply));
  }

  async #answer(req: ControlRequest): Promise<unknown> {
    try {
      const inspection = this.#target.inspect;
      if (inspection && isInspectCommand(req.method)) {
        return withPythonFloats(
          req.method,
          await runInspect(req, inspection, this.#target.hostname),
        );
      }
      return run(req, this.#target);
    } catch (err) {
      return { error: `${(err as Error).name}('${(err as Error).message}')` };
    }
  }

  #reply(req: ControlRequest, reply: unknown, tooLarge = false): void {
    if (reply === NO_REPLY || req.ticket === undefined || !req.replyTo) return;
    const out = encodeControlReply(this.#target.hostname, reply, {
      ticket: req.ticket,
      clock: this.#clock.forward(),
    });
    this.#broker.publish(out, req.replyTo).catch((err) => {
      log.error("Cannot reply to {method}: {error}", {
        method: req.method,
        error: (err as Error).message,
      });
      // A reply over the broker's message limit (KV: 60 KB, e.g. `scheduled`
      // with hundreds of ETA tasks) is answered with the reason, so the caller
      // sees an error from this node instead of no reply at all.
      if (err instanceof RangeError && !tooLarge) {
        this.#reply(req, { error: `${err.name}('${err.message}')` }, true);
      }
    });
  }
}

/**
 * Log a warning when another worker answers to this one's node name (see
 * {@link RemoteControl.nameTaken}): Celery warns the same way at start-up
 * (`DuplicateNodenameWarning`).
 *
 * @example
 * ```ts ignore
 * await pidbox.start(signal);
 * void warnIfNameTaken(pidbox, "celeriac@web1", signal);
 * // WARNING: Another worker is running as celeriac@web1: give each worker its own -n …
 * ```
 *
 * @param pidbox the worker's remote control, started
 * @param hostname the worker's node name
 * @param signal stops waiting (the worker's shutdown)
 */
export async function warnIfNameTaken(
  pidbox: RemoteControl,
  hostname: string,
  signal: AbortSignal,
): Promise<void> {
  if (!(await pidbox.nameTaken(signal))) {
    log.debug("No other worker is running as {hostname}", { hostname });
    return;
  }
  log.warn(
    "Another worker is running as {hostname}: give each worker its own node name with -n " +
      "(e.g. -n w2@%h); remote control addressed to {hostname}, its replies, events and " +
      "the dashboard cannot tell the two apart",
    { hostname },
  );
}
