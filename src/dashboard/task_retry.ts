/**
 * "Retry (send again)": a failed task sent again with the arguments its
 * events showed, to the queue it came from. Celery's task events do not
 * name the queue (only a client's `task-sent`, off by default, does), so
 * that queue is the one the worker that ran it consumes (`inspect
 * active_queues`); for a worker on several queues the operator chooses.
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import { HttpError } from "./errors.ts";
import { parsePyLiteral, PyLiteralError } from "./py_literal.ts";
import type { TaskRecord } from "./task_record.ts";
import { TRUNCATED } from "./text_caps.ts";
import type { ViewModel } from "./view_model.ts";

/**
 * The queues a task can be sent again to: the one its `task-sent` event
 * named, else those the worker that ran it consumes (empty when neither is
 * known: the app's routing then decides).
 *
 * @example
 * ```ts ignore
 * retryQueues(model, model.tasks.get(id)!); // ["math"]
 * ```
 *
 * @param model the view model (workers and their queues)
 * @param t the task
 * @returns the queue names
 */
export function retryQueues(model: ViewModel, t: TaskRecord): string[] {
  if (t.queue) return [t.queue];
  return t.worker ? [...(model.workers.get(t.worker)?.queues ?? [])] : [];
}

function chooseQueue(model: ViewModel, t: TaskRecord, asked: unknown): string | undefined {
  if (asked !== undefined && asked !== null) {
    if (typeof asked !== "string" || asked.trim() === "") {
      throw new HttpError(400, "bad_param", "queue must be a non-empty string");
    }
    return asked;
  }
  const queues = retryQueues(model, t);
  if (queues.length > 1) {
    throw new HttpError(
      409,
      "queue_unknown",
      `The events of ${t.uuid} do not say which queue it came from, and ${t.worker} consumes ` +
        `${queues.join(", ")}: choose one (send {"queue": "<name>"})`,
    );
  }
  return queues[0];
}

/**
 * Send a failed, revoked or rejected task again: same name, args and kwargs
 * (read back from the events' reprs), to `body.queue` or the queue of
 * {@link retryQueues} when there is one.
 *
 * @example
 * ```ts ignore
 * const { id, message } = await retryTask(app, model, model.tasks.get(id)!, {});
 * ```
 *
 * @param app sends the task
 * @param model the view model
 * @param t the task
 * @param body the request's body (`queue` optional)
 * @returns the new task's id and a message naming it
 * @throws {HttpError} 409 for a task not failed, without args or with args cut when stored,
 *   or whose queue must be chosen;
 *   422 for args that are not literals; 400 for a bad `queue`
 */
export async function retryTask(
  app: Celery,
  model: ViewModel,
  t: TaskRecord,
  body: Record<string, unknown>,
): Promise<{ ok: true; id: string; message: string }> {
  const id = t.uuid;
  if (t.state !== "FAILURE" && t.state !== "REVOKED" && t.state !== "REJECTED") {
    throw new HttpError(409, "not_failed", `Only failed tasks are retried; ${id} is ${t.state}`);
  }
  if (!t.name || t.args === null) {
    throw new HttpError(409, "no_args", `The dashboard saw no task-received event for ${id}`);
  }
  if (t.args.endsWith(TRUNCATED) || t.kwargs?.endsWith(TRUNCATED)) {
    throw new HttpError(
      409,
      "args_truncated",
      `The dashboard holds only the start of the arguments of ${id}: retry it from the client`,
    );
  }
  let args: unknown, kwargs: unknown;
  try {
    args = parsePyLiteral(t.args);
    kwargs = parsePyLiteral(t.kwargs ?? "{}");
  } catch (err) {
    if (err instanceof PyLiteralError) {
      throw new HttpError(
        422,
        "args_not_literal",
        `The arguments of ${id} are not plain literals, so they cannot be sent again: ${err.message}`,
      );
    }
    throw err;
  }
  if (!Array.isArray(args) || kwargs === null || typeof kwargs !== "object") {
    throw new HttpError(422, "args_not_literal", `The arguments of ${id} are not (args, kwargs)`);
  }
  const queue = chooseQueue(model, t, body.queue);
  const sent = await app.sendTask(t.name, args, {
    kwargs: kwargs as Record<string, unknown>,
    ...(queue ? { queue } : {}),
  });
  const where = queue ? ` to queue ${queue}` : "";
  return { ok: true, id: sent.id, message: `Sent ${t.name} again as ${sent.id}${where}` };
}
