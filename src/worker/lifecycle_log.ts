/**
 * The worker's log lines about tasks, written by a lifecycle subscriber
 * (category `["celeriac", "worker", "task"]`: the command line shows its
 * info lines only when `--loglevel` asks for them, as Celery does).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { exceptionRepr } from "../protocol/signature.ts";
import type { LifecycleEvent } from "./lifecycle.ts";
import { oneLine } from "./log_values.ts";

const log = getLogger(["celeriac", "worker", "task"]);

/**
 * A lifecycle subscriber that logs what happens to tasks, as Celery 5.2's
 * worker does where it has the same line: receipts, successes, retries
 * (`Task name[id] retry: Retry in 1s: KeyError('x')`) and terminations
 * (asked for) at info; expiries, other revocations and requeues at
 * warning; failures at error, with their traceback on the lines after
 * (`Task name[id] raised unexpected: TypeError('x')`, then the stack of
 * the Web Worker that ran it); parked messages at error. A line whose
 * level is off is not built.
 *
 * @example
 * ```ts
 * import { Lifecycle, logLifecycle } from "@celeriac/celeriac/worker";
 * new Lifecycle().subscribe(logLifecycle(() => ["tasks.add"]));
 * ```
 *
 * @param taskNames the tasks the worker knows, named when a message is of another
 * @returns the subscriber
 */
export function logLifecycle(taskNames: () => string[]): (event: LifecycleEvent) => void {
  const info = log.isEnabledFor("info");
  const error = log.isEnabledFor("error");
  return (e) => {
    switch (e.type) {
      case "received":
        if (info && !e.held) {
          log.info("Task {name}[{id}] received", {
            name: oneLine(e.req.task),
            id: oneLine(e.req.id),
          });
        }
        break;
      case "held":
        if (info) {
          log.info("Task {name}[{id}] received, ETA {eta}", {
            name: oneLine(e.req.task),
            id: oneLine(e.req.id),
            eta: e.req.eta!.toISOString(),
          });
        }
        break;
      case "succeeded":
        if (info && e.outcome.replacedBy) {
          log.info("Task {name}[{id}] replaced by {replacement}", {
            name: oneLine(e.req.task),
            id: oneLine(e.req.id),
            replacement: e.outcome.replacedBy,
          });
        } else if (info) {
          log.info("Task {name}[{id}] succeeded in {seconds}s", {
            name: oneLine(e.req.task),
            id: oneLine(e.req.id),
            seconds: (e.outcome.runtime / 1000).toFixed(6),
          });
        }
        break;
      case "failed":
        if (error && e.cause === "worker-lost") {
          log.error(
            "Task {name}[{id}] failed with WorkerLostError: its Web Worker died ({reason})",
            {
              name: oneLine(e.req.task),
              id: oneLine(e.req.id),
              reason: e.message,
            },
          );
        } else if (error) {
          const traceback = e.outcome?.traceback;
          log.error("Task {name}[{id}] raised unexpected: {exc}{traceback}", {
            name: oneLine(e.req.task),
            id: oneLine(e.req.id),
            exc: exceptionRepr(e.exc),
            traceback: traceback ? `\n${traceback}` : "",
          });
        }
        break;
      case "retried":
        if (info) {
          const exc = e.outcome.exc;
          log.info("Task {name}[{id}] retry: Retry {when}{cause}", {
            name: oneLine(e.req.task),
            id: oneLine(e.req.id),
            when: e.outcome.retry.when,
            cause: exc ? `: ${exceptionRepr(exc)}` : "",
          });
        }
        break;
      case "revoked":
        if (e.reason === "expired") {
          log.warn("Task {name}[{id}] expired at {expires}: not run", {
            name: oneLine(e.req.task),
            id: oneLine(e.req.id),
            expires: e.req.expires?.toISOString(),
          });
        } else if (e.reason === "terminated") {
          log.info("Task {name}[{id}] terminated while running (revoked with terminate)", {
            name: oneLine(e.req.task),
            id: oneLine(e.req.id),
          });
        } else {
          log.warn("Task {name}[{id}] {reason}: not run", {
            name: oneLine(e.req.task),
            id: oneLine(e.req.id),
            reason: oneLine(e.reason),
          });
        }
        break;
      case "rejected":
        if (e.kind === "malformed" || e.taskName === null) {
          log.error("Parked message {taskId} from {queue}: {reason}", {
            taskId: oneLine(e.taskId ?? "(no id)"),
            queue: oneLine(e.delivery.queue),
            reason: oneLine(e.reason),
          });
        } else if (e.kind === "unregistered") {
          log.error("Parked task {name}[{id}]: {reason} (this worker runs: {known})", {
            name: oneLine(e.taskName),
            id: oneLine(e.taskId),
            reason: oneLine(e.reason),
            known: taskNames().join(", "),
          });
        } else {
          log.error("Parked task {name}[{id}]: {reason}", {
            name: oneLine(e.taskName),
            id: oneLine(e.taskId),
            reason: oneLine(e.reason),
          });
        }
        break;
      case "returned":
        if (e.why === "worker-lost") {
          log.warn("Task {name}[{id}] requeued: its Web Worker died ({reason})", {
            name: oneLine(e.req.task),
            id: oneLine(e.req.id),
            reason: e.detail,
          });
        } else if (e.why === "eta-hold-limit") {
          log.debug("Task {name}[{id}] held for long: publishing it again until its ETA", {
            name: oneLine(e.req.task),
            id: oneLine(e.req.id),
          });
        }
        break;
    }
  };
}
