/** Run requests and the task context they carry, for tests that build them by hand. */

import { encodeTaskMessage, type TaskMessageInput } from "../../src/protocol/task_message.ts";
import type { RunRequest } from "../../src/worker/executor.ts";
import { decodeTaskHeaders, type Delivery } from "../../protocol.ts";
import type { HeldTask } from "../../worker.ts";

/**
 * A run request's `info`: a first try from the default queue, no workflow,
 * with `overrides` applied.
 *
 * @param overrides fields to change
 * @returns the info
 */
export function runInfo(overrides: Partial<RunRequest["info"]> = {}): RunRequest["info"] {
  return {
    retries: 0,
    rootId: null,
    parentId: null,
    group: null,
    eta: null,
    expires: null,
    queue: "celery",
    redelivered: false,
    hostname: "test@local",
    ...overrides,
  };
}

/**
 * A run request of `tasks.add` with id `id-<seq>` (also its root) and a
 * JSON body, every optional field named (unset ones `undefined`, as
 * `unpackRun` gives them back), with `overrides` applied.
 *
 * @param seq the worker's sequence number
 * @param body the message body
 * @param overrides fields to change
 * @returns the request
 */
export function runRequest(
  seq: number,
  body: Uint8Array,
  overrides: Partial<RunRequest> = {},
): RunRequest {
  return {
    seq,
    task: "tasks.add",
    id: `id-${seq}`,
    body,
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: {},
    decoded: undefined,
    storeResult: true,
    describe: false,
    extended: false,
    timeLimits: undefined,
    info: runInfo({ rootId: `id-${seq}` }),
    ...overrides,
  };
}

/**
 * The run request of a task message encoded from `input` (its id also its
 * root, its retries in the info too), its result stored.
 *
 * @param input the message's fields
 * @returns the request
 */
export function messageRunRequest(input: TaskMessageInput): RunRequest {
  const m = encodeTaskMessage(input);
  return {
    seq: 1,
    task: input.task,
    id: input.id,
    body: m.body,
    contentType: m.contentType,
    contentEncoding: m.contentEncoding,
    headers: m.headers,
    storeResult: true,
    info: runInfo({ retries: input.retries ?? 0, rootId: input.id }),
  };
}

/** The last sequence number {@link nextSeq} gave. */
let poolSeq = 0;

/**
 * The next sequence number of this process, unused by every request
 * {@link poolRunRequest} made.
 *
 * @returns the number
 */
export function nextSeq(): number {
  return ++poolSeq;
}

/**
 * The run request of a `task` message with `args`, a fresh id and the next
 * sequence number of this process, from host `t@local`, for tests that hand
 * tasks to a pool; `overrides` applied (`timeLimits`, say).
 *
 * @param task the task name
 * @param args its positional arguments
 * @param overrides fields to change
 * @returns the request
 */
export function poolRunRequest(
  task: string,
  args: unknown[],
  overrides: Partial<RunRequest> = {},
): RunRequest {
  const req = messageRunRequest({
    task,
    id: crypto.randomUUID(),
    args,
    kwargs: {},
    now: new Date(),
    origin: "t@local",
    replyTo: "r",
  });
  return { ...req, seq: nextSeq(), info: { ...req.info, hostname: "t@local" }, ...overrides };
}

/**
 * A worker's held task of `message` as delivered (tag "1") from the `celery` queue by the
 * default exchange.
 *
 * @param message an encoded task message
 * @param since when it was taken (ms)
 * @param acked whether it is acked already
 * @returns the held task
 * @example
 * ```ts
 * const t = heldTaskOf(encodeTaskMessage({ task: "t.add", id: "1", args: [], kwargs: {} }));
 * ```
 */
export function heldTaskOf(
  message: ReturnType<typeof encodeTaskMessage>,
  since = 0,
  acked = false,
): HeldTask {
  const delivery: Delivery = {
    ...message,
    queue: "celery",
    deliveryTag: "1",
    redelivered: false,
    exchange: "",
    routingKey: "celery",
  };
  return { req: decodeTaskHeaders(delivery), delivery, since, acked };
}
