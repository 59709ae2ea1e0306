/**
 * The park id of a message parked on RabbitMQ: what tells the two copies
 * of a message parked twice (its copy written, its connection closed
 * before its acknowledgement, the redelivery parked again) from two
 * messages that only look alike.
 *
 * @module
 */

import type { Message } from "../protocol/message.ts";
import { PARKED_HEADER, REDELIVERED_HEADER } from "./amqp_message.ts";
import { DELIVERY_COUNT_HEADER } from "./deliveries.ts";

/** Headers a park or a redelivery changes: left out of a park id. */
const CHANGED_BY_REDELIVERY: ReadonlySet<string> = new Set([
  PARKED_HEADER,
  REDELIVERED_HEADER,
  DELIVERY_COUNT_HEADER,
]);

/** Where a parked message came from, as its parking note says. */
export interface ParkOrigin {
  /** Task id (a message without one gets no park id). */
  taskId: string | null;
  /** The queue it was taken from. */
  queue: string;
  /** Exchange it was published to. */
  exchange: string;
  /** Routing key it was published with. */
  routingKey: string;
}

/**
 * The park id of a message: a digest of its task id, where it came from,
 * its content type and encoding, its headers (all but those a park or a
 * redelivery changes: the parking note, Celeriac's redelivered mark,
 * `x-delivery-count`), its properties and its body. The two copies of a
 * message parked twice share it; two publishes that differ in any header
 * (retries, eta, expires, parent or root id) or property do not, nor does
 * a message put back by a requeue and parked again share it with the copy
 * it was moved from (its `x-celeriac-requeue` header names the requeue).
 * `null`
 * without a task id: two publishes of the same bytes are then taken as
 * two messages.
 *
 * @example
 * ```ts
 * import { parkId } from "./amqp_park_id.ts";
 * const m = {
 *   body: new TextEncoder().encode("[[], {}, {}]"), contentType: "application/json",
 *   contentEncoding: "utf-8", headers: { id: "t1", retries: 0 }, properties: {},
 * };
 * const from = { taskId: "t1", queue: "celery", exchange: "", routingKey: "celery" };
 * const again = { ...m, headers: { ...m.headers, retries: 1 } };
 * (await parkId(m, from)) === (await parkId(again, from)); // false
 * ```
 *
 * @param message the message (a delivery, or a copy read from the parking queue)
 * @param from its task id and where it came from
 * @returns 32 hex digits, or `null` without a task id
 */
export async function parkId(message: Message, from: ParkOrigin): Promise<string | null> {
  if (!from.taskId) return null;
  const headers = Object.keys(message.headers).filter((k) => !CHANGED_BY_REDELIVERY.has(k))
    .sort().map((k) => [k, canonical(message.headers[k])]);
  const head = new TextEncoder().encode(
    JSON.stringify([
      from.taskId,
      from.queue,
      from.exchange,
      from.routingKey,
      message.contentType,
      message.contentEncoding,
      headers,
      canonical(message.properties),
    ]) + "\n",
  );
  const bytes = new Uint8Array(head.length + message.body.length);
  bytes.set(head);
  bytes.set(message.body, head.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A header value as JSON can hold it, keys sorted, bytes, times and big integers tagged. */
function canonical(value: unknown): unknown {
  if (value instanceof Uint8Array) return { "!bytes": Array.from(value) };
  if (value instanceof Date) return { "!time": value.getTime() };
  if (typeof value === "bigint") return { "!int": String(value) };
  if (typeof value === "number" && !Number.isFinite(value)) return { "!number": String(value) };
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== "object") return value;
  const table = value as Record<string, unknown>;
  return Object.keys(table).sort().map((k) => [k, canonical(table[k])]);
}
