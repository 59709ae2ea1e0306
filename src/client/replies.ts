/**
 * Collecting the replies to a remote-control call, as Celery's `Mailbox`
 * does: bind a reply queue to `reply.celery.pidbox`, broadcast the request
 * with a ticket and that queue's routing key as `reply_to`, keep the
 * replies carrying the ticket until the timeout or the expected number of
 * replies. As in kombu, the timeout counts from the request sent: setting
 * up the reply queue on a slow or loaded host does not eat into it. At
 * the deadline, what reached the transport before it is still collected.
 *
 * @module
 */

import { lazyLogger } from "./lazy_logger.ts";
import type { Broker, Subscription } from "../broker/port.ts";
import { MAX_TIMER_MS } from "../broker/long_timeout.ts";
import { untilAborted } from "../broker/sleep.ts";
import type { LamportClock } from "../protocol/clock.ts";
import {
  controlExpires,
  type ControlRequest,
  encodeControlRequest,
  PIDBOX_EXCHANGE,
  PIDBOX_REPLY_EXCHANGE,
} from "../protocol/control.ts";
import { pyJsonLoads } from "../protocol/json.ts";
import type { Message } from "../protocol/message.ts";
import { utf8Text } from "../protocol/utf8_text.ts";

const log = lazyLogger(["celeriac", "control"]);

/** Milliseconds the flush at the deadline may take (a RabbitMQ or Redis round trip, a KV read). */
const FLUSH_MS = 1000;

/**
 * How long and for how many replies a call waits.
 *
 * @example
 * ```ts
 * import type { ReplyOptions } from "@celeriac/celeriac";
 * const options: ReplyOptions = { timeout: 2, destination: ["celeriac@web1"] };
 * ```
 */
export interface ReplyOptions {
  /** Seconds to wait for replies. Default 1 (Celery's). */
  timeout?: number;
  /** Node names to address; default every worker. */
  destination?: string[];
  /** Stop after this many replies. Default: the number of `destination`s, else none. */
  limit?: number;
  /** Stops waiting early; the replies so far are returned. */
  signal?: AbortSignal;
  /**
   * How a reply's JSON text is decoded. Default `pyJsonLoads`; the command
   * line's `pyJsonLoadsFloats` keeps whole floats (`2.0`) as `PyFloat`, to
   * print them as Celery's does.
   */
  decode?: (text: string) => unknown;
}

/**
 * One node's reply: `{ nodename: reply }`, as Celery returns them.
 *
 * @example
 * ```ts
 * import type { NodeReply } from "@celeriac/celeriac";
 * const pong: NodeReply<{ ok: string }> = { "celeriac@host": { ok: "pong" } };
 * ```
 */
export type NodeReply<T = unknown> = Record<string, T>;

/**
 * A stalled event loop runs an expired timer before the replies that
 * reached the transport in time are read: the subscription hands them over
 * (KV: one more read; RabbitMQ: a round trip on its channel; Redis: a
 * fence pushed to the reply list, read up to), bounded by {@link FLUSH_MS};
 * without one, one more turn lets the socket's data in.
 */
async function lastReplies(subscription: Subscription | void): Promise<void> {
  if (!subscription) return await new Promise((r) => setTimeout(r, 0));
  await untilAborted(subscription.flush(), AbortSignal.timeout(FLUSH_MS));
}

/**
 * Broadcast a request and collect the replies carrying its ticket.
 *
 * @example
 * ```ts ignore
 * const replies = await call(broker, clock, oid, { method: "ping", arguments: {}, destination: null });
 * ```
 *
 * @param broker the app's broker
 * @param clock the sender's Lamport clock
 * @param oid the sender's reply-queue id
 * @param req the request (without ticket and reply_to)
 * @param options timeout, limit, signal
 * @returns the replies, in arrival order
 */
export async function call(
  broker: Broker,
  clock: LamportClock,
  oid: string,
  req: ControlRequest,
  options: ReplyOptions = {},
): Promise<NodeReply[]> {
  const timeout = (options.timeout ?? 1) * 1000;
  if (!(timeout >= 0)) throw new RangeError(`timeout must be >= 0 seconds, got ${options.timeout}`);
  const limit = options.limit ?? req.destination?.length ?? Infinity;
  const ticket = crypto.randomUUID();
  const replies: NodeReply[] = [];
  const stop = new AbortController();
  const done = Promise.withResolvers<void>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timedOut = false;
  const onAbort = () => done.resolve();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const onMessage = (m: Message) => {
    // After the call returned its array, a late reply must not change it.
    if (stop.signal.aborted || m.headers.ticket !== ticket) return;
    clock.adjust(m.headers.clock);
    let body: unknown;
    try {
      body = (options.decode ?? pyJsonLoads)(utf8Text(m.body));
    } catch (err) {
      log.warn("Ignored a malformed reply to {method}: {error}", {
        method: req.method,
        error: (err as Error).message,
      });
      return;
    }
    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      log.warn("Ignored a reply to {method} that is not {{node: reply}}", { method: req.method });
      return;
    }
    replies.push(body as NodeReply);
    if (replies.length >= limit) done.resolve();
  };
  try {
    // A reply queue per call (kombu keeps one per oid): a call's clean-up
    // never races the next call's binding.
    const key = `${oid}.${ticket}`;
    const subscription = await broker.subscribe(PIDBOX_REPLY_EXCHANGE, onMessage, {
      signal: stop.signal,
      queue: `${key}.${PIDBOX_REPLY_EXCHANGE}`,
      bindingKey: key,
    });
    const message = encodeControlRequest(
      { ...req, ticket, replyTo: { exchange: PIDBOX_REPLY_EXCHANGE, routingKey: key } },
      { clock: clock.forward(), expires: controlExpires(timeout / 1000) },
    );
    await broker.broadcast(PIDBOX_EXCHANGE, message);
    // In steps a timer holds (2^31 - 1 ms): a longer delay would fire at once.
    const arm = (left: number) => {
      timer = setTimeout(() => {
        if (left > MAX_TIMER_MS) return arm(left - MAX_TIMER_MS);
        timedOut = true;
        done.resolve();
      }, Math.min(left, MAX_TIMER_MS));
    };
    arm(timeout);
    if (!options.signal?.aborted) await done.promise;
    if (timedOut && replies.length < limit) await lastReplies(subscription);
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    stop.abort();
  }
  return replies;
}

/** The duplicate node names already warned about. */
const warnedDupes = new Set<string>();

/**
 * Merge replies into `{ node: reply }` as Celery's `flatten_reply`, with its
 * warning when several come from one node name: two workers started with the
 * same `-n`, of which only the last reply is kept. A name is warned about
 * once per process, as Python shows a warning once (a dashboard polls).
 *
 * @example
 * ```ts
 * import { flattenReplies } from "./replies.ts";
 * flattenReplies([{ "w1@a": { ok: "pong" } }, { "w2@a": { ok: "pong" } }]);
 * // { "w1@a": { ok: "pong" }, "w2@a": { ok: "pong" } }
 * ```
 *
 * @param replies the replies, in arrival order
 * @returns one entry per node name
 */
export function flattenReplies<T = unknown>(replies: readonly NodeReply<T>[]): NodeReply<T> {
  const nodes: NodeReply<T> = {};
  const dupes = new Set<string>();
  for (const reply of replies) {
    for (const name of Object.keys(reply)) if (Object.hasOwn(nodes, name)) dupes.add(name);
    Object.assign(nodes, reply);
  }
  const fresh = [...dupes].filter((name) => !warnedDupes.has(name));
  for (const name of fresh) warnedDupes.add(name);
  if (fresh.length > 0) {
    log.warn(
      "Received multiple replies from node {s} {names}: give each worker its own node name " +
        "with -n (e.g. -n w2@%h); only one reply per name is shown",
      { s: fresh.length === 1 ? "name" : "names", names: fresh.sort().join(", ") },
    );
  }
  return nodes;
}
