/**
 * Deliveries of task messages for tests that hand them to the worker's
 * intake or settlements directly, without a broker.
 *
 * @module
 */

import type { Delivery } from "../../src/broker/port.ts";
import type { Message } from "../../src/protocol/message.ts";
import { encodeTaskMessage, type TaskMessageInput } from "../../src/protocol/task_message.ts";

/**
 * A delivery on queue `q` (tag `tag-<id>`) of a `task` message with id `id`
 * and args `[1, 2]`, its headers extended with `headers`.
 *
 * @param task the task name
 * @param id the task id
 * @param headers headers to add or replace
 * @returns the delivery
 */
export function taskDelivery(
  task: string,
  id: string,
  headers: Record<string, unknown> = {},
): Delivery {
  const m = encodeTaskMessage({
    task,
    id,
    args: [1, 2],
    kwargs: {},
    now: new Date(),
    origin: "x",
    replyTo: "",
  });
  return {
    ...m,
    headers: { ...m.headers, ...headers },
    queue: "q",
    deliveryTag: `tag-${id}`,
    redelivered: false,
    exchange: "",
    routingKey: "q",
  };
}

/**
 * A delivery on queue `q` (tag `tag-<id>`) of a `t.add` message with id `id`
 * and an empty body: for settle and park paths that read only its headers.
 *
 * @param id the task id
 * @returns the delivery
 */
export function headerDelivery(id: string): Delivery {
  return {
    body: new Uint8Array(),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: { id, task: "t.add" },
    properties: {},
    queue: "q",
    deliveryTag: `tag-${id}`,
    redelivered: false,
    exchange: "",
    routingKey: "q",
  };
}

/**
 * A `t.add(2, 3)` task message with id `id` (origin `test`, no reply
 * queue), with `extra` options of `encodeTaskMessage` (headers, embed,
 * group…) added.
 *
 * @param id the task id
 * @param extra more options
 * @returns the message
 */
export function addMessage(id: string, extra: Partial<TaskMessageInput> = {}): Message {
  return encodeTaskMessage({
    task: "t.add",
    id,
    args: [2, 3],
    kwargs: {},
    now: new Date(),
    origin: "test",
    replyTo: "",
    ...extra,
  });
}
