/**
 * What the command line accepts: its usage text, the `parseArgs` table of
 * every subcommand's options, and the readers of the values shared by
 * several subcommands. The subcommands are run in main.ts and
 * worker_command.ts.
 *
 * @module
 */

import type { parseArgs } from "node:util";
import { BEAT_OPTIONS, BEAT_USAGE } from "./beat.ts";
import { positiveInt } from "./flag_numbers.ts";
import { DASHBOARD_OPTIONS, DASHBOARD_USAGE } from "./dashboard.ts";
import { MONITOR_COMMANDS, MONITOR_OPTIONS, MONITOR_USAGE } from "./monitor.ts";
import { RELIABILITY_OPTIONS, RELIABILITY_USAGE } from "./reliability.ts";
import { SCALE_HELP, SCALE_OPTIONS } from "./scale_flags.ts";
import { UsageError } from "./exit_codes.ts";
import { nodeName } from "../worker/node_name.ts";

/**
 * Commands that only talk to the broker: without `--app` they use an app
 * with no tasks, configured by `--broker` / `--backend` and the
 * environment, as `celery -b URL inspect ping` does without `-A`.
 *
 * @example
 * ```ts
 * APP_OPTIONAL.has("purge"); // true
 * ```
 */
export const APP_OPTIONAL: ReadonlySet<string> = new Set([
  ...MONITOR_COMMANDS,
  "dashboard",
  "purge",
  "parked",
]);

/**
 * Usage text of the command line.
 *
 * @example Printing the help of a custom entry point
 * ```ts
 * import { main, USAGE } from "@celeriac/celeriac/worker";
 * if (Deno.args.length === 0) console.log(USAGE);
 * else Deno.exitCode = await main(Deno.args);
 * ```
 */
export const USAGE = `Celeriac worker — runs Celery-protocol tasks defined in a TypeScript module.

Usage:
  deno run -A worker.ts --app ./tasks.ts [options]     run a worker
  deno run -A worker.ts completion bash|zsh|fish       print a shell completion script
  deno run -A worker.ts parked --app ./tasks.ts [--requeue] [--limit N]
                                                       list (or requeue) parked messages
  deno run -A worker.ts purge --app ./tasks.ts [-Q a,b] [-f]
                                                       delete every waiting message of the queues${MONITOR_USAGE}${BEAT_USAGE}${DASHBOARD_USAGE}

Options:
  -A, --app MODULE[:EXPORT]  module exporting the Celery app (required, except by call, result,
                             inspect, control, status, events, report, dashboard, purge and
                             parked, which then take --broker / CELERY_BROKER_URL alone, as
                             celery -b)
  -b, --broker URL           broker URL (default: the app's, CELERY_BROKER_URL, or kv://)
      --backend URL          result backend URL (default: the app's or CELERY_RESULT_BACKEND);
                             --result-backend URL, Celery's name, is the same
  -c, --concurrency N        Web Workers in the pool (default: number of CPUs)
  -Q, --queues a,b           queues to consume (default: the app's default queue, "celery")
  -P, --pool threads|inline  run tasks in Web Workers (default) or on the main thread
      --prefetch-multiplier N, --prefetch N
                             tasks each Web Worker holds at once, running or waiting
                             (default: adaptive, 1 for long CPU-bound tasks up to 64 for
                             short ones; inline pool: up to 100)
  -n, --hostname NAME        node name (default celeriac@%h): %h = host name, %n = its first
                             label, %d = its domain, %% = %; NAME without @ = celeriac@NAME
      --acks-late            acknowledge after tasks finish (at-least-once)
      --reject-on-worker-lost
                             requeue late-ack tasks whose Web Worker dies (default: fail
                             them with WorkerLostError)
      --time-limit SECONDS   hard time limit of tasks that set none: the Web Worker is
                             replaced and the task fails with TimeLimitExceeded
      --soft-time-limit SECONDS
                             soft time limit: the task's ctx.signal fires
      --max-tasks-per-child N
                             replace a Web Worker after it ran N tasks
      --max-memory-per-child KIB
                             replace a Web Worker whose heap exceeds KIB kibibytes after a task
      --task-permissions PERMS
                             Deno permissions of task code without its own: inherit (default),
                             none, JSON ({"net":["api.example.com:443"]}) or Deno flags
                             ("--allow-net=api.example.com:443 --allow-env=TZ")
      --eta-hold-limit SECONDS
                             AMQP: re-publish ETA tasks held, and acknowledge early-ack tasks
                             not started, longer than this (default 600), so RabbitMQ's
                             consumer_timeout does not close the channel
${SCALE_HELP}
      --without-remote-control
                             do not answer celery.pidbox commands (ping, revoke, ...)${RELIABILITY_USAGE}
      --fail-fast            exit at once when the broker, result backend or beat store
                             cannot be reached at start (default: retry every 2, 4, ... 30 s,
                             100 times, as Celery's broker_connection_retry_on_startup)
  -E, --task-events          send task events for monitors (Flower, celery events)
      --heartbeat-interval SECONDS
                             seconds between worker-heartbeat events (default 2)
      --without-heartbeat    send no worker-online, periodic worker-heartbeat or
                             worker-offline (the heartbeat command still gets one)
      --without-gossip, --without-mingle
                             accepted for Celery's command lines; nothing to turn off (an
                             INFO line says why)
  -l, --loglevel LEVEL       DEBUG, INFO, WARNING, ERROR, CRITICAL (default: INFO for the
                             worker's own lines, WARNING for per-task lines, as Celery)
      --log-format text|json text (default) or JSON Lines: one object per record with
                             hostname, task_id and task_name as fields
      --logfile PATH         append log records to PATH instead of the console; worker: %n =
                             node name before @, %h = after it, %p = whole, %i = 0, %I = empty
  -f, --force                purge: do not ask before deleting (Celery's -f/--logfile is
                             --logfile PATH here)
  -X, --exclude-queues a,b   purge: queues not to purge, of -Q's (or the default queue)
      --requeue              parked: move the parked messages back to their queues
      --limit N              parked: list or requeue at most N messages
  -h, --help                 show this help
      --version              print the version and exit

Signals: SIGINT/SIGTERM once = warm shutdown (finish running tasks);
         twice, or SIGQUIT = cold shutdown (after --soft-shutdown-timeout, requeue
         running tasks and exit).`;

/**
 * The `--pool` values.
 *
 * @example
 * ```ts
 * POOLS.includes("inline"); // true
 * ```
 */
export const POOLS = ["threads", "inline"] as const;

/**
 * `--prefetch-multiplier` (Celery's name) or `--prefetch`; both at once must agree.
 *
 * @example
 * ```ts
 * prefetchOption({ prefetch: "8" }); // 8
 * ```
 *
 * @throws {UsageError} when a value is not a whole number >= 1, or the two differ
 */
export function prefetchOption(
  values: Record<string, string | boolean | undefined>,
): number | undefined {
  const multiplier = positiveInt(
    values["prefetch-multiplier"] as string | undefined,
    "--prefetch-multiplier",
  );
  const prefetch = positiveInt(values.prefetch as string | undefined, "--prefetch");
  if (multiplier !== undefined && prefetch !== undefined && multiplier !== prefetch) {
    throw new UsageError(
      "--prefetch-multiplier and --prefetch are the same setting: give one of them",
    );
  }
  return multiplier ?? prefetch;
}

/**
 * The worker's node name from `-n` (Celery's `%h`, `%n`, … expanded; without `-n`,
 * `celeriac@<host>`).
 *
 * @example
 * ```ts
 * nodeFlag("w1@%n"); // "w1@web1" on web1.example.com
 * ```
 *
 * @throws {UsageError} for a `%` sequence Celery does not expand (`-n w@%x`)
 */
export function nodeFlag(value: string | undefined): string {
  try {
    return nodeName(value);
  } catch (err) {
    throw err instanceof RangeError ? new UsageError(err.message, { cause: err }) : err;
  }
}

/**
 * The queues of `-Q a,b` (blanks dropped); `undefined` without `-Q`.
 *
 * @example
 * ```ts
 * queueList("a, b,"); // ["a", "b"]
 * ```
 *
 * @throws {UsageError} when `-Q` names no queue (`-Q ""`, as `-Q "$QUEUES"` with the variable
 *   unset gives): the default queue, other tasks' queue, is not taken in its place
 */
export function queueList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const list = value.split(",").map((q) => q.trim()).filter(Boolean);
  if (list.length === 0) {
    throw new UsageError(
      `-Q, --queues names no queue (got ${
        JSON.stringify(value)
      }): give one or more, comma-separated (-Q celery,math), or leave -Q out for the default queue`,
    );
  }
  return list;
}

/**
 * The queues `purge` deletes: those of `-Q` (default: the default queue) but those of
 * `-X, --exclude-queues` (Celery's `purge -X`).
 *
 * @example
 * ```ts
 * purgeQueues("a,b,c", "b", "celery"); // ["a", "c"]
 * purgeQueues(undefined, undefined, "celery"); // ["celery"]
 * ```
 *
 * @param queues `-Q`'s value
 * @param exclude `-X`'s value
 * @param defaultQueue the app's default queue
 * @returns the queues, possibly none
 * @throws {UsageError} when `-Q` or `-X` names no queue (`-X "$KEEP"` with the variable unset
 *   would purge the queue meant to be kept)
 */
export function purgeQueues(
  queues: string | undefined,
  exclude: string | undefined,
  defaultQueue: string,
): string[] {
  const kept = exclude?.split(",").map((q) => q.trim()).filter(Boolean);
  if (kept?.length === 0) {
    throw new UsageError(
      `-X, --exclude-queues names no queue (got ${
        JSON.stringify(exclude)
      }): give the queues not to purge, comma-separated (-X emails,reports), or leave -X out`,
    );
  }
  return (queueList(queues) ?? [defaultQueue]).filter((q) => !kept?.includes(q));
}

/**
 * The command line's options, as `parseArgs` reads them.
 *
 * @example
 * ```ts ignore
 * const { values, positionals } = parseArgs({ args, allowPositionals: true, options: OPTIONS });
 * ```
 */
export const OPTIONS = {
  app: { type: "string", short: "A" },
  broker: { type: "string", short: "b" },
  backend: { type: "string" },
  "result-backend": { type: "string" },
  concurrency: { type: "string", short: "c" },
  queues: { type: "string", short: "Q" },
  pool: { type: "string", short: "P" },
  prefetch: { type: "string" },
  "prefetch-multiplier": { type: "string" },
  hostname: { type: "string", short: "n" },
  "acks-late": { type: "boolean" },
  "reject-on-worker-lost": { type: "boolean" },
  "time-limit": { type: "string" },
  "soft-time-limit": { type: "string" },
  "max-tasks-per-child": { type: "string" },
  "eta-hold-limit": { type: "string" },
  "without-remote-control": { type: "boolean" },
  "fail-fast": { type: "boolean" },
  "task-events": { type: "boolean", short: "E" },
  "heartbeat-interval": { type: "string" },
  "without-heartbeat": { type: "boolean" },
  "without-gossip": { type: "boolean" },
  "without-mingle": { type: "boolean" },
  "max-memory-per-child": { type: "string" },
  "task-permissions": { type: "string" },
  loglevel: { type: "string", short: "l" },
  requeue: { type: "boolean" },
  force: { type: "boolean", short: "f" },
  "exclude-queues": { type: "string", short: "X" },
  limit: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
  "log-format": { type: "string" },
  logfile: { type: "string" },
  ...BEAT_OPTIONS,
  ...DASHBOARD_OPTIONS,
  ...RELIABILITY_OPTIONS,
  ...SCALE_OPTIONS,
  ...MONITOR_OPTIONS,
} as const;

/**
 * The option values `parseArgs` returns for {@link OPTIONS}.
 *
 * @example
 * ```ts ignore
 * const pool = (values as Values).pool ?? "threads";
 * ```
 */
export type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>[
  "values"
];
