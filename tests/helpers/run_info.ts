/** Run requests and the task context they carry, for tests that build them by hand. */

import type { RunRequest } from "../../src/worker/executor.ts";

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
