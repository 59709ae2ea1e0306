/**
 * Remote-control (pidbox) messages as Celery 5.2 sends them: requests
 * broadcast on the `celery.pidbox` fanout exchange, replies published to
 * the `reply.celery.pidbox` direct exchange under the requester's key.
 *
 * @module
 */

import { ControlPatternError, ProtocolError } from "./errors.ts";
import { globMatch } from "./glob.ts";
import { PyFloat, pyJsonDumps, pyJsonLoads } from "./json.ts";
import type { Message } from "./message.ts";
import { describeValue } from "./task_fields.ts";
import { utf8Text } from "./utf8_text.ts";

/**
 * The fanout exchange remote-control requests are broadcast on.
 *
 * @example
 * ```ts
 * import { PIDBOX_EXCHANGE } from "@celeriac/celeriac/protocol";
 * const queue = `celeriac@host.${PIDBOX_EXCHANGE}`; // a worker's own pidbox queue
 * ```
 */
export const PIDBOX_EXCHANGE = "celery.pidbox";
/**
 * The direct exchange remote-control replies are published to.
 *
 * @example
 * ```ts
 * import { PIDBOX_REPLY_EXCHANGE } from "@celeriac/celeriac/protocol";
 * PIDBOX_REPLY_EXCHANGE; // "reply.celery.pidbox"
 * ```
 */
export const PIDBOX_REPLY_EXCHANGE = "reply.celery.pidbox";

/**
 * The argument a Celeriac client adds to a `revoke` request whose ids it
 * has stored in the broker itself (a revoke to every worker): Celeriac
 * workers then keep the ids without storing them again, so the broker
 * holds one entry per revoke, not one more per worker (on RabbitMQ each
 * store is a new entry of the `celeriac.revoked` stream). Celery's workers
 * take it in their `revoke(..., **kwargs)` and ignore it. Requests without
 * it (Celery's client, `celery control revoke`, a revoke to named nodes)
 * are stored by each Celeriac worker that gets them.
 *
 * @example
 * ```ts
 * import { REVOKE_STORED_ARG } from "@celeriac/celeriac/protocol";
 * const args = { task_id: ["a"], terminate: false, signal: "SIGTERM", [REVOKE_STORED_ARG]: true };
 * ```
 */
export const REVOKE_STORED_ARG = "celeriac_stored";

/**
 * Seconds a cast (a request without reply) is valid for: Celery's
 * `Control.broadcast` hands its default `timeout=1.0` to kombu for casts as
 * for calls, so a cast carries `expires: time() + 1.0` (a `heartbeat` cast,
 * a monitor's wakeup, `revoke` without `reply=True`).
 *
 * @example
 * ```ts
 * import { CAST_TIMEOUT, controlExpires } from "./control.ts";
 * controlExpires(CAST_TIMEOUT, 1_795_490_307_808); // 1795490308.808
 * ```
 */
export const CAST_TIMEOUT = 1;

/**
 * The `expires` header of a request sent with a timeout, as kombu's
 * `Mailbox._publish` computes it: `time() + timeout`, or 0 (no expiry) for
 * a timeout of 0.
 *
 * @example
 * ```ts
 * import { controlExpires } from "./control.ts";
 * controlExpires(2, 1_000_000); // 1002
 * controlExpires(0); // 0
 * ```
 *
 * @param timeout seconds
 * @param now the current time (epoch milliseconds)
 * @returns unix seconds, or 0
 */
export function controlExpires(timeout: number, now: number = Date.now()): number {
  return timeout ? now / 1000 + timeout : 0;
}

/**
 * A remote-control request.
 *
 * @example Asking every worker to revoke a task
 * ```ts
 * import type { ControlRequest } from "@celeriac/celeriac/protocol";
 * const req: ControlRequest = {
 *   method: "revoke",
 *   arguments: { task_id: "5c0e4e3a-7c8e-4b8e-9d0e-1f2a3b4c5d6e", terminate: false, signal: "SIGTERM" },
 *   destination: null, // every worker
 * };
 * ```
 */
export interface ControlRequest {
  /** Command name, e.g. `revoke`, `ping`. */
  method: string;
  /** Command arguments. */
  arguments: Record<string, unknown>;
  /** Node names addressed, or `null` (or none) for all. */
  destination: string[] | null;
  /** Node-name pattern, used when no `destination` is given and `matcher` is set. */
  pattern?: string | null;
  /**
   * How `pattern` matches: `glob` (`fnmatch`: `*`, `?`, `[seq]`, `[!seq]`)
   * or `pcre` (a regular expression matched from the start, as Python's
   * `re.match`); without one, the pattern is not used (every node is
   * addressed). Another name is refused by {@link addressedTo} only when it
   * is used (a pattern and no destination), as kombu does; a decoded value
   * that is not text is kept as it is (it names no matcher: refused there too).
   */
  matcher?: unknown;
  /** Present when replies are wanted: the request's ticket. */
  ticket?: string;
  /** Present when replies are wanted: where they go. */
  replyTo?: { exchange: string; routingKey: string };
}

function textOf(message: Message): string {
  return utf8Text(message.body);
}

/**
 * Encode a request as Celery's `Mailbox` publishes it (JSON body, `clock`
 * and `expires` headers, persistent delivery). `expires` is a Python float
 * as kombu sends it (`time() + timeout`), also when whole
 * (`1795490308.0`, a double on AMQP); 0 (no expiry) is kombu's int `0`.
 *
 * @example
 * ```ts
 * import { encodeControlRequest } from "@celeriac/celeriac/protocol";
 * const message = encodeControlRequest(
 *   { method: "ping", arguments: {}, destination: null },
 *   { clock: 1, expires: Date.now() / 1000 + 1 },
 * );
 * Number(message.headers.expires) > Date.now() / 1000; // true
 * ```
 *
 * @param req the request
 * @param options the sender's Lamport clock and the expiry (unix seconds, 0 = none)
 * @returns the message to broadcast on {@link PIDBOX_EXCHANGE}
 */
export function encodeControlRequest(
  req: ControlRequest,
  options: { clock: number; expires: number },
): Message {
  const body: Record<string, unknown> = {
    method: req.method,
    arguments: req.arguments,
    destination: req.destination,
    pattern: req.pattern ?? null,
    matcher: req.matcher ?? null,
  };
  if (req.ticket !== undefined && req.replyTo) {
    body.ticket = req.ticket;
    body.reply_to = { exchange: req.replyTo.exchange, routing_key: req.replyTo.routingKey };
  }
  return {
    body: new TextEncoder().encode(pyJsonDumps(body)),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: {
      clock: options.clock,
      expires: options.expires === 0 ? 0 : new PyFloat(options.expires),
    },
    properties: { delivery_mode: 2, priority: 0 },
  };
}

/**
 * Decode a broadcast request.
 *
 * @example
 * ```ts
 * import { decodeControlRequest, encodeControlRequest } from "@celeriac/celeriac/protocol";
 * const m = encodeControlRequest({ method: "ping", arguments: {}, destination: null }, { clock: 1, expires: 0 });
 * decodeControlRequest(m).method; // "ping"
 * ```
 *
 * @param message the message received on {@link PIDBOX_EXCHANGE}
 * @returns the request
 * @throws {ProtocolError} when it is not a JSON pidbox request
 */
export function decodeControlRequest(message: Message): ControlRequest {
  if (message.contentType !== "application/json") {
    throw new ProtocolError(
      `A remote-control request must be JSON, got "${message.contentType}"`,
    );
  }
  let body: Record<string, unknown>;
  try {
    body = pyJsonLoads(textOf(message)) as Record<string, unknown>;
  } catch (err) {
    throw new ProtocolError(`A remote-control request is not valid JSON: ${err}`, { cause: err });
  }
  if (body === null || typeof body !== "object" || typeof body.method !== "string") {
    throw new ProtocolError("A remote-control request needs a string `method`");
  }
  const args = body.arguments;
  const reply = body.reply_to as Record<string, unknown> | undefined;
  const matcher = body.matcher;
  return {
    method: body.method,
    arguments: args !== null && typeof args === "object" ? args as Record<string, unknown> : {},
    destination: destinationOf(body.destination),
    pattern: typeof body.pattern === "string" ? body.pattern : null,
    matcher: matcher || null,
    ...(typeof body.ticket === "string" && reply && typeof reply === "object"
      ? {
        ticket: body.ticket,
        replyTo: {
          exchange: typeof reply.exchange === "string" ? reply.exchange : PIDBOX_REPLY_EXCHANGE,
          routingKey: typeof reply.routing_key === "string" ? reply.routing_key : "",
        },
      }
      : {}),
  };
}

/**
 * The node names of a request's `destination`, as kombu's pidbox reads it
 * (`if destination: if hostname in destination: dispatch`): none given
 * (null, or an empty list, text or object) addresses every node; a list
 * addresses the names in it (values of other types in it name no node), an
 * object its keys. One that names no node is refused: kombu answers nothing
 * (or fails with a TypeError).
 */
function destinationOf(dest: unknown): string[] | null {
  if (!dest) return null;
  const list = Array.isArray(dest) ? dest : typeof dest === "object" ? Object.keys(dest) : [dest];
  if (list.length === 0) return null;
  const names = list.filter((d) => typeof d === "string");
  if (names.length === 0) {
    const bad = list.find((d) => typeof d !== "string");
    throw new ProtocolError(
      `A remote-control request's destination must list node names (strings), got ` +
        describeValue(bad),
    );
  }
  return names;
}

/**
 * The longest `pattern` a remote-control request may carry. Node names are
 * short (`celery@worker-host-01.example.com`): a longer pattern is refused
 * with {@link ControlPatternError}, which bounds the work of matching it.
 *
 * @example
 * ```ts
 * import { MAX_PATTERN_LENGTH } from "@celeriac/celeriac/protocol";
 * "celeriac@*".length <= MAX_PATTERN_LENGTH; // true
 * ```
 */
export const MAX_PATTERN_LENGTH = 1024;

/**
 * Whether this process has V8's linear-time regular-expression engine (the
 * `l` flag, given by `--enable-experimental-regexp-engine`, which the worker
 * runs with by default): with it a pcre pattern runs in time linear in the
 * node name, and one it cannot run so (back-references, lookarounds, and
 * `{m,n}` repeats with a large bound such as `.{1,32}`) is refused instead of
 * being left to backtrack: the excessive-backtracks flag moves a pattern to
 * that same engine, so it cannot bound one the engine refuses.
 */
const LINEAR_REGEXP = (() => {
  try {
    new RegExp("", "l");
    return true;
  } catch {
    return false;
  }
})();

function pcreMatch(pattern: string, nodename: string): boolean {
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${pattern})`, LINEAR_REGEXP ? "l" : "");
  } catch (err) {
    if (LINEAR_REGEXP && /linear time/.test((err as Error).message)) {
      throw new ControlPatternError(
        `A remote-control request's pcre pattern cannot be matched in linear time ` +
          `(back-references, lookarounds and {m,n} repeats with a large bound such as ` +
          `.{1,32} are refused): use + or * instead of a large {m,n}, drop the ` +
          `back-reference or lookaround, or name the nodes in \`destination\`. ` +
          (err as Error).message,
      );
    }
    return false;
  }
  return re.test(nodename);
}

/**
 * Whether a request is addressed to a node, as kombu's pidbox decides it:
 * by `destination` when it names nodes, else by `pattern` when a `matcher`
 * is set (glob, or a regular expression matched from the start), else to
 * every node.
 *
 * @example
 * ```ts
 * import { addressedTo } from "@celeriac/celeriac/protocol";
 * addressedTo({ method: "ping", arguments: {}, destination: ["a@h"] }, "b@h"); // false
 * addressedTo({ method: "ping", arguments: {}, destination: null, pattern: "celeriac@*", matcher: "glob" }, "celeriac@h"); // true
 * ```
 *
 * @param req the request
 * @param nodename the node's name, e.g. `celeriac@host`
 * @returns whether the node should act on it
 * @throws {ProtocolError} when a pattern is to be matched (no destination)
 *   with a matcher other than `glob` or `pcre` (kombu raises
 *   MatcherNotInstalled: the node answers nothing)
 * @throws {ControlPatternError} when that pattern is longer than
 *   {@link MAX_PATTERN_LENGTH}, or is a pcre pattern V8's linear-time engine
 *   (when the process has it) cannot run
 */
export function addressedTo(req: ControlRequest, nodename: string): boolean {
  if (req.destination?.length) return req.destination.includes(nodename);
  if (!req.pattern || !req.matcher) return true;
  if (req.matcher !== "glob" && req.matcher !== "pcre") {
    throw new ProtocolError(
      `A remote-control request's matcher must be "glob" or "pcre", got ${
        describeValue(req.matcher)
      }`,
    );
  }
  if (req.pattern.length > MAX_PATTERN_LENGTH) {
    throw new ControlPatternError(
      `A remote-control request's pattern must be at most ${MAX_PATTERN_LENGTH} characters, ` +
        `got ${req.pattern.length}: name the nodes in \`destination\` instead`,
    );
  }
  return req.matcher === "pcre"
    ? pcreMatch(req.pattern, nodename)
    : globMatch(req.pattern, nodename);
}

/**
 * Encode a worker's reply: body `{nodename: reply}`, headers `ticket` and
 * `clock`, transient delivery.
 *
 * @example
 * ```ts
 * import { encodeControlReply } from "@celeriac/celeriac/protocol";
 * const m = encodeControlReply("celeriac@host", { ok: "pong" }, { ticket: "t-1", clock: 3 });
 * new TextDecoder().decode(m.body); // '{"celeriac@host": {"ok": "pong"}}'
 * ```
 *
 * @param nodename the replying node
 * @param reply the command's reply
 * @param options the request's ticket and the worker's clock
 * @returns the message to publish to the request's `replyTo`
 */
export function encodeControlReply(
  nodename: string,
  reply: unknown,
  options: { ticket: string; clock: number },
): Message {
  return {
    body: new TextEncoder().encode(pyJsonDumps({ [nodename]: reply })),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: { ticket: options.ticket, clock: options.clock },
    properties: { delivery_mode: 1, priority: 0 },
  };
}

/**
 * The task ids of a `revoke` request's `task_id` argument (one id or a list).
 *
 * @example
 * ```ts
 * import { revokedIds } from "@celeriac/celeriac/protocol";
 * revokedIds({ task_id: ["a", "b"] }); // ["a", "b"]
 * revokedIds({ task_id: "a" }); // ["a"]
 * ```
 *
 * @param args the request's arguments
 * @returns the ids
 * @throws {ProtocolError} when `task_id` is missing
 */
export function revokedIds(args: Record<string, unknown>): string[] {
  const ids = args.task_id;
  if (typeof ids === "string") return [ids];
  if (Array.isArray(ids) && ids.every((i) => typeof i === "string")) return ids;
  throw new ProtocolError("A revoke request needs `task_id`: a task id or a list of them");
}
