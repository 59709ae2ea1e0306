/**
 * The request a task is handed to the pool with: what its Web Worker needs to
 * run it (body, headers, time limits, what to store and report).
 *
 * @module
 */

import type { Delivery } from "../broker/port.ts";
import type { Task } from "../client/task.ts";
import type { TaskRequest } from "../protocol/task_request.ts";
import type { RunRequest } from "./executor.ts";
import { resolveTimeLimits } from "./time_limits.ts";
import type { WorkerState } from "./worker_state.ts";

/**
 * Build the pool's request for task `req` (delivered as `d`) under dispatch
 * number `seq`; its time limits are resolved now (a `time_limit` control
 * command changes those of the next run).
 *
 * @example
 * ```ts ignore
 * st.pool.run([runRequest(st, seq, delivery, req, task)]);
 * ```
 *
 * @param st the worker's state
 * @param seq the dispatch number its outcome comes back with
 * @param d its delivery
 * @param req its decoded headers
 * @param task the registered task
 * @returns the request
 */
export function runRequest(
  st: WorkerState,
  seq: number,
  d: Delivery,
  req: TaskRequest,
  task: Task<never, unknown>,
): RunRequest {
  const compression = d.headers.compression;
  const limits = resolveTimeLimits(
    req.timeLimit,
    st.timeLimits.get(req.task) ?? task.options,
    st.options,
  );
  return {
    seq,
    task: req.task,
    id: req.id,
    body: d.body,
    contentType: d.contentType,
    contentEncoding: d.contentEncoding,
    headers: task.options.bind ? d.headers : compression ? { compression } : {},
    decoded: req.body,
    storeResult: st.backend !== null && !req.ignoreResult,
    describe: st.events?.taskEvents ?? false,
    extended: st.app.config.resultExtended || undefined,
    timeLimits: limits.hard === null && limits.soft === null ? undefined : limits,
    info: {
      retries: req.retries,
      rootId: req.rootId,
      parentId: req.parentId,
      group: req.group,
      groupIndex: req.groupIndex,
      replacedTaskNesting: req.replacedTaskNesting,
      eta: req.eta,
      expires: req.expires,
      queue: d.queue,
      redelivered: d.redelivered,
      hostname: st.hostname,
    },
  };
}
