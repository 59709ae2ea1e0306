/**
 * The messages of Celery's rpc:// result backend (5.2): one JSON message
 * per state change, `{"task_id", "status", "result", "traceback",
 * "children"}` (no `date_done`), sent to the client's reply queue with the
 * task id as `correlation_id`.
 *
 * @module
 */

import type { SimplePublish } from "../broker/amqp_fast_publish.ts";
import { pyJsonDumps, pyJsonLoads } from "../protocol/json.ts";
import { jsonFields } from "../protocol/json_fields.ts";
import type { Message } from "../protocol/message.ts";
import { decodeResultMeta, type ResultMeta } from "../protocol/result_meta.ts";
import { utf8Text } from "../protocol/utf8_text.ts";

/**
 * `correlation_id` prefix of the markers a client sends to its own reply
 * queue to know when everything sent before has arrived.
 *
 * @example
 * ```ts
 * import { SYNC_PREFIX } from "./rpc_message.ts";
 * SYNC_PREFIX; // "celeriac.sync."
 * ```
 */
export const SYNC_PREFIX = "celeriac.sync.";

const UTF8 = new TextEncoder();

const META_FIELDS = ["status", "task_id", "result", "traceback", "children"];

/** A raw field, or `fallback` when it is absent or null (as `??` treats a decoded one). */
function rawOr(raw: string | undefined, fallback: string): string {
  return raw === undefined || raw === "null" ? fallback : raw;
}

/**
 * The body of the rpc message for a meta: its fields copied as the meta's
 * encoder wrote them (no decode and re-encode), else decoded and encoded
 * again for a meta whose fields cannot be split.
 *
 * @example
 * ```ts
 * import { rpcResultBody } from "./rpc_message.ts";
 * rpcResultBody("t1", '{"status": "SUCCESS", "result": 5, "task_id": "t1"}');
 * // '{"task_id": "t1", "status": "SUCCESS", "result": 5, "traceback": null, "children": []}'
 * ```
 *
 * @param correlationId the task message's correlation id (the task id)
 * @param meta the meta JSON (see `encodeResultMeta`)
 * @returns the JSON body Celery 5.2 sends
 */
export function rpcResultBody(correlationId: string, meta: string): string {
  const f = jsonFields(meta, META_FIELDS);
  if (!f || f[0] === undefined) {
    const m = pyJsonLoads(meta) as Record<string, unknown>;
    return pyJsonDumps({
      task_id: m.task_id ?? correlationId,
      status: m.status,
      result: m.result ?? null,
      traceback: m.traceback ?? null,
      children: m.children ?? [],
    });
  }
  const [status, taskId, result, traceback, children] = f;
  return '{"task_id": ' +
    (taskId === undefined || taskId === "null" ? pyJsonDumps(correlationId) : taskId) +
    ', "status": ' + status + ', "result": ' + rawOr(result, "null") + ', "traceback": ' +
    rawOr(traceback, "null") + ', "children": ' + rawOr(children, "[]") + "}";
}

/**
 * The rpc message for a stored meta, as a Celery 5.2 worker sends it.
 *
 * @example
 * ```ts
 * import { rpcResultMessage } from "./rpc_message.ts";
 * const meta = '{"status": "SUCCESS", "result": 5, "traceback": null, "children": [], ' +
 *   '"date_done": "2024-01-01T00:00:00", "task_id": "t1"}';
 * const m = rpcResultMessage("t1", meta, { persistent: false });
 * new TextDecoder().decode(m.body);
 * // '{"task_id": "t1", "status": "SUCCESS", "result": 5, "traceback": null, "children": []}'
 * m.properties; // { correlation_id: "t1", delivery_mode: 1, priority: 0 }
 * ```
 *
 * @param correlationId the task message's correlation id (the task id)
 * @param meta the meta JSON (see `encodeResultMeta`)
 * @param options `persistent`: delivery mode 2 (Celery `result_persistent`)
 * @returns the message to publish to the reply queue
 */
export function rpcResultMessage(
  correlationId: string,
  meta: string,
  options: { persistent: boolean },
): Message {
  return {
    body: UTF8.encode(rpcResultBody(correlationId, meta)),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: {},
    properties: {
      correlation_id: correlationId,
      delivery_mode: options.persistent ? 2 : 1,
      priority: 0,
    },
  };
}

/**
 * The same result as {@link rpcResultMessage}, ready for `publishSimpleBatch`
 * (amqplib's property names, no message object in between).
 *
 * @example
 * ```ts
 * import { rpcResultPublish } from "./rpc_message.ts";
 * const meta = '{"status": "SUCCESS", "result": 5, "task_id": "t1"}';
 * rpcResultPublish("t1", meta, "replies", { persistent: false }).props;
 * // { contentType: "application/json", contentEncoding: "utf-8", correlationId: "t1",
 * //   deliveryMode: 1, priority: 0 }
 * ```
 *
 * @param correlationId the task message's correlation id (the task id)
 * @param meta the meta JSON (see `encodeResultMeta`)
 * @param replyTo the reply queue
 * @param options `persistent`: delivery mode 2 (Celery `result_persistent`)
 * @returns the publish to the reply queue
 */
export function rpcResultPublish(
  correlationId: string,
  meta: string,
  replyTo: string,
  options: { persistent: boolean },
): SimplePublish {
  return {
    routingKey: replyTo,
    body: UTF8.encode(rpcResultBody(correlationId, meta)),
    props: {
      contentType: "application/json",
      contentEncoding: "utf-8",
      correlationId,
      deliveryMode: options.persistent ? 2 : 1,
      priority: 0,
    },
  };
}

/**
 * Read a message from a reply queue: the task id (its `correlation_id`,
 * else the body's `task_id`, as Celery matches) and the meta.
 *
 * @example
 * ```ts
 * import { readRpcResult, rpcResultMessage } from "./rpc_message.ts";
 * const m = rpcResultMessage("t1", '{"status": "STARTED", "result": null, "task_id": "t1"}', {
 *   persistent: false,
 * });
 * readRpcResult(m)?.meta.status; // "STARTED"
 * ```
 *
 * @param message a message from the reply queue
 * @returns the task id and meta; `null` for what is not a result
 */
export function readRpcResult(message: Message): { taskId: string; meta: ResultMeta } | null {
  let meta: ResultMeta;
  try {
    meta = decodeResultMeta(utf8Text(message.body));
  } catch {
    return null;
  }
  const cid = message.properties.correlation_id;
  const taskId = typeof cid === "string" && cid !== "" ? cid : meta.task_id;
  if (typeof taskId !== "string" || taskId === "") return null;
  return { taskId, meta };
}

/**
 * A marker for {@link SYNC_PREFIX}: an empty message whose arrival proves
 * that everything published to the queue before it has arrived.
 *
 * @example
 * ```ts
 * import { syncMarker } from "./rpc_message.ts";
 * syncMarker("abc").properties.correlation_id; // "celeriac.sync.abc"
 * ```
 *
 * @param id unique id of the marker
 * @returns the message
 */
export function syncMarker(id: string): Message {
  return {
    body: new Uint8Array(),
    contentType: "application/octet-stream",
    contentEncoding: "binary",
    headers: {},
    properties: { correlation_id: SYNC_PREFIX + id, delivery_mode: 1 },
  };
}
