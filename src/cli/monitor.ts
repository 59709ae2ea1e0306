/**
 * The monitoring and client subcommands of `worker.ts`, with Celery's
 * names: `call`, `result`, `inspect`, `control`, `status`, `events`,
 * `report`. Their options and usage lines are merged into the command
 * line's.
 *
 * @module
 */

import type { Celery } from "../client/app.ts";
import { runCall, runResult } from "./call.ts";
import { runEvents } from "./events.ts";
import { runControl, runInspect, runReport, runStatus } from "./inspect.ts";

/**
 * Options of the monitoring subcommands (`--args`, `--kwargs`, `--queue`, `--expires` come from
 * beat's).
 */
export const MONITOR_OPTIONS = {
  countdown: { type: "string" },
  eta: { type: "string" },
  serializer: { type: "string" },
  exchange: { type: "string" },
  "routing-key": { type: "string" },
  traceback: { type: "boolean" },
  wait: { type: "boolean" },
  destination: { type: "string", short: "d" },
  timeout: { type: "string", short: "t" },
  json: { type: "boolean", short: "j" },
  dump: { type: "boolean" },
} as const;

/** Usage lines of the monitoring subcommands. */
export const MONITOR_USAGE = `
  deno run -A worker.ts call NAME --app ./tasks.ts [-a JSON] [-k JSON] [--countdown S]
                   [--eta ISO] [--expires S|ISO] [--serializer json|msgpack]
                   [--queue Q] [--exchange E --routing-key K]  send a task, print its id
                   [--wait [-t S] [--json] [--traceback]]     (--wait: then its result)
  deno run -A worker.ts result ID [--traceback] [-t S|NAME] [--json]
                                                       print a task's result (exit 1: it
                                                       failed; 3: none within the timeout)
  deno run -A worker.ts inspect CMD [ARGS] [-d NODES] [-t S] [--json]
                                                       active, reserved, scheduled, stats,
                                                       active_queues, query_task IDS, registered,
                                                       revoked, conf, report, clock, ping
  deno run -A worker.ts control CMD [ARGS] [-d NODES] [-t S] [--json]
                                                       enable_events, disable_events, rate_limit
                                                       TASK RATE, time_limit TASK SOFT HARD,
                                                       revoke IDS, terminate SIGNAL IDS,
                                                       add_consumer Q, cancel_consumer Q,
                                                       heartbeat, shutdown, pool_grow N, ...
  deno run -A worker.ts status [-t S] [--json]         the workers that answer a ping
  deno run -A worker.ts report [-d NODES]              the workers' software and settings
  deno run -A worker.ts events [--dump]                live view of workers and tasks (q: quit);
                                                       --dump (or stdout not a terminal):
                                                       one line per event
      (exit 2: a usage error; 69: the broker or result backend is unreachable, or
       no worker replied (inspect, control, status, report); 70: any other error)

Monitoring options:
  -a, --args JSON            call, schedule add: positional arguments, a JSON array
  -k, --kwargs JSON          call, schedule add: keyword arguments, a JSON object
      --countdown SECONDS    call: run no sooner than SECONDS from now
      --eta ISO              call: run no sooner than this time (ISO 8601; without a zone,
                             UTC, as the worker reads it: 2030-01-01T12:00:00 is 12:00 UTC)
      --expires S|ISO        call, schedule add: do not run after SECONDS from now (call also
                             takes an ISO 8601 time, UTC without a zone)
      --serializer NAME      call: json (default: the app's) or msgpack
      --queue Q              call, schedule add: send to queue Q (default: the task's route)
      --exchange E           call: publish to exchange E (with --routing-key; either alone
                             is not used, as in Celery: the task goes to its queue)
      --routing-key K        call: the routing key, with --exchange
      --wait                 call: wait for the task's result and print it as result does,
                             with its exit codes (the way to get a result from rpc://)
      --traceback            result: only the traceback stored now, without waiting, exit 0
                             (an empty line when none yet), as Celery; call --wait: also print it
  -d, --destination NODES    inspect, control, status, report: ask only these nodes (a,b)
  -t, --timeout SECONDS      inspect, control, status, report: wait for replies (default 1);
                             result, call --wait: wait for the result (default 10);
                             result -t NAME (not a number): Celery's -t/--task, the task name
      --task NAME            result: the task's name (Celery's -t/--task), checked against the
                             app's tasks; the result is read the same without it
  -j, --json                 inspect, control, status, report: print the replies as JSON;
                             result, call --wait: the outcome as JSON (task_id, status, ...)
      --dump                 events: one line per event, even on a terminal
`;

/**
 * The subcommands this module runs.
 *
 * @example
 * ```ts
 * MONITOR_COMMANDS.includes("inspect"); // true
 * ```
 */
export const MONITOR_COMMANDS: readonly string[] = [
  "call",
  "result",
  "inspect",
  "control",
  "status",
  "events",
  "report",
];
const COMMANDS = new Set(MONITOR_COMMANDS);

/**
 * Whether a subcommand is one of these.
 *
 * @param command the first positional
 * @returns true for call, result, inspect, control, status, events, report
 */
export function isMonitorCommand(command: string): boolean {
  return COMMANDS.has(command);
}

/**
 * Run a monitoring subcommand; the app is closed afterwards.
 *
 * @param command the subcommand
 * @param app the app
 * @param positionals what follows the subcommand
 * @param values parsed flags
 * @returns exit code
 */
export async function runMonitor(
  command: string,
  app: Celery,
  positionals: string[],
  values: Record<string, string | boolean | undefined>,
): Promise<number> {
  try {
    switch (command) {
      case "call":
        return await runCall(app, positionals[0], values);
      case "result":
        return await runResult(app, positionals[0], values);
      case "inspect":
        return await runInspect(app, positionals, values);
      case "control":
        return await runControl(app, positionals, values);
      case "status":
        return await runStatus(app, values);
      case "report":
        return await runReport(app, values);
      default:
        return await runEvents(app, values);
    }
  } finally {
    await app.close();
  }
}
