/**
 * Celery's task events from the worker's lifecycle: a subscriber that turns
 * each step into `task-received`, `task-started`, `task-succeeded`,
 * `task-failed`, `task-retried`, `task-revoked` or `task-rejected` with the
 * fields Celery 5.2 sends.
 *
 * `task-started` is sent when the task is handed to its Web Worker (which
 * may hold a few tasks at once), not when its handler begins.
 *
 * @module
 */

import { EventShape } from "../protocol/event_writer.ts";
import { pyRepr } from "../protocol/repr.ts";
import { argsRepr, kwargsRepr } from "../protocol/repr.ts";
import type { ExceptionInfo } from "../protocol/result_meta.ts";
import { pyIsoFormat } from "../protocol/time.ts";
import type { TaskRequest } from "../protocol/task_request.ts";
import type { EventDispatcher } from "./event_dispatcher.ts";
import { etaText } from "./inspect_replies.ts";
import type { LifecycleEvent } from "./lifecycle.ts";

// The events sent for every task, by their values in Celery 5.2's field order.
// A task-received's fields but its ids repeat from task to task of a name
// (a first run's: no parent, no retry, no eta or expiry): copied as bytes.
const RECEIVED = new EventShape("task-received", [
  "uuid",
  "name",
  "args",
  "kwargs",
  "root_id",
  "parent_id",
  "retries",
  "eta",
  "expires",
], ["name", "args", "kwargs", "parent_id", "retries", "eta", "expires"]);
const STARTED = new EventShape("task-started", ["uuid"]);
const SUCCEEDED = new EventShape("task-succeeded", ["uuid", "result", "runtime"]);

/** Signal number Celery reports for a task stopped by `revoke(terminate=True)` (SIGTERM). */
const SIGTERM = 15;

/**
 * Python repr of a stored exception: `ValueError('boom')`, `Exception()`.
 *
 * @example
 * ```ts
 * exceptionRepr({ exc_type: "KeyError", exc_message: ["k"], exc_module: "builtins" }); // "KeyError('k')"
 * ```
 *
 * @param exc the exception
 * @returns the repr
 */
export function exceptionRepr(exc: ExceptionInfo): string {
  const args = Array.isArray(exc.exc_message) ? exc.exc_message : [exc.exc_message];
  return `${exc.exc_type}(${args.map((a) => pyRepr(a)).join(", ")})`;
}

function iso(date: Date | null): string | null {
  return date ? pyIsoFormat(date, "+00:00") : null;
}

/** The `args` repr of a task: its header's, else that of a decoded body. */
function argsText(req: TaskRequest): string {
  if (req.argsrepr !== null || !req.body) return req.argsrepr ?? "";
  return argsRepr(req.body.args);
}

/** The `kwargs` repr of a task, as {@link argsText}. */
function kwargsText(req: TaskRequest): string {
  if (req.argsrepr !== null || !req.body) return req.kwargsrepr ?? "";
  return kwargsRepr(req.body.kwargs);
}

/**
 * A lifecycle subscriber that sends task events through `events` (which
 * drops them while task events are off).
 *
 * @example
 * ```ts ignore
 * lifecycle.subscribe(sendTaskEvents(dispatcher));
 * ```
 *
 * @param events the worker's event dispatcher
 * @returns the subscriber
 */
export function sendTaskEvents(events: EventDispatcher): (e: LifecycleEvent) => void {
  return (e) => {
    if (!events.taskEvents) return;
    switch (e.type) {
      case "received": {
        const { req } = e;
        events.sendTaskValues(RECEIVED, [
          req.id,
          req.task,
          argsText(req),
          kwargsText(req),
          req.rootId,
          req.parentId,
          req.retries,
          etaText(req),
          iso(req.expires),
        ]);
        break;
      }
      case "started":
        events.sendTaskValues(STARTED, [e.req.id]);
        break;
      case "succeeded":
        // A replaced task succeeds later, under the same id, as its replacement's final task.
        if (e.outcome.replacedBy) break;
        events.sendTaskValues(SUCCEEDED, [
          e.req.id,
          e.outcome.repr ?? "None",
          e.outcome.runtime / 1000,
        ]);
        break;
      case "failed":
        events.sendTask("task-failed", {
          uuid: e.req.id,
          exception: exceptionRepr(e.exc),
          traceback: e.outcome?.traceback ?? `${e.exc.exc_type}: ${e.message}`,
        });
        break;
      case "retried":
        events.sendTask("task-retried", {
          uuid: e.req.id,
          exception: e.outcome.exc ? exceptionRepr(e.outcome.exc) : "None",
          traceback: e.outcome.traceback ?? "",
        });
        break;
      case "revoked":
        events.sendTask("task-revoked", {
          uuid: e.req.id,
          terminated: e.reason === "terminated",
          signum: e.reason === "terminated" ? e.signum ?? SIGTERM : null,
          expired: e.reason === "expired",
        });
        break;
      case "rejected":
        if (e.kind === "unregistered") {
          events.sendTask("task-failed", {
            uuid: e.req!.id,
            exception: `NotRegistered(${pyRepr(e.req!.task)})`,
          });
        } else if (e.kind !== "malformed" && e.taskId) {
          events.sendTask("task-rejected", { uuid: e.taskId, requeue: false });
        }
        break;
      case "returned":
        if (e.seq !== undefined) {
          events.sendTask("task-rejected", { uuid: e.req.id, requeue: true });
        }
        break;
    }
  };
}
