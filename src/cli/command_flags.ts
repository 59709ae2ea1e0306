/**
 * Which options each command reads, and the refusal of the others: the
 * command line parses one table for every command (options.ts), so without
 * this check `purge --queue emails -f` would purge the default queue (purge
 * reads `-Q`, `--queue` is call's) and `call -Q emails` would send to it, as
 * click refuses `celery purge --queue`: "No such option".
 *
 * @module
 */

import { parseArgs } from "node:util";
import { closestName } from "./arg_errors.ts";
import { OPTIONS } from "./options.ts";
import { RELIABILITY_OPTIONS } from "./reliability.ts";
import { SCALE_OPTIONS } from "./scale_flags.ts";
import { UsageError } from "./exit_codes.ts";

/** Options every command that opens an app reads. */
const APP = ["app", "broker", "backend", "result-backend"];
/** Options of the logging, read by every command, and `--help`. */
const LOGGING = ["loglevel", "log-format", "logfile", "help", "version"];
/** Options of an embedded dashboard (`worker -D`): the dashboard's, without `--nice`. */
const EMBEDDED_DASHBOARD = [
  "port",
  "address",
  "basic-auth",
  "token",
  "allowed-host",
  "read-only",
  "hide-args",
  "max-tasks",
];

/**
 * The options each subcommand reads (the worker's: {@link workerOptions}).
 *
 * @example
 * ```ts
 * COMMAND_OPTIONS.purge.includes("queues"); // true
 * ```
 */
export const COMMAND_OPTIONS: Readonly<Record<string, readonly string[]>> = {
  completion: ["help", "version"],
  parked: [...APP, "requeue", "limit", ...LOGGING],
  purge: [...APP, "queues", "exclude-queues", "force", ...LOGGING],
  call: [
    ...APP,
    "args",
    "kwargs",
    "countdown",
    "eta",
    "expires",
    "serializer",
    "queue",
    "exchange",
    "routing-key",
    "wait",
    "timeout",
    "json",
    "traceback",
    ...LOGGING,
  ],
  result: [...APP, "task", "traceback", "timeout", "json", ...LOGGING],
  inspect: [...APP, "destination", "timeout", "json", ...LOGGING],
  control: [...APP, "destination", "timeout", "json", ...LOGGING],
  status: [...APP, "destination", "timeout", "json", ...LOGGING],
  report: [...APP, "destination", "timeout", "json", ...LOGGING],
  events: [...APP, "dump", ...LOGGING],
  beat: [
    ...APP,
    "list",
    "max-interval",
    "lease-time",
    "beat-store",
    "schedule",
    "fail-fast",
    ...LOGGING,
  ],
  schedule: [
    ...APP,
    "beat-store",
    "schedule",
    "task",
    "every",
    "cron",
    "at",
    "args",
    "kwargs",
    "queue",
    "expires",
    "priority",
    ...LOGGING,
  ],
  dashboard: [
    ...APP,
    ...EMBEDDED_DASHBOARD,
    "nice",
    "queues",
    ...LOGGING,
  ],
};

/** Options of an embedded beat (`worker -B`): beat's, without its `--list` and `--fail-fast`. */
const EMBEDDED_BEAT = ["max-interval", "lease-time", "beat-store", "schedule"];
/** The worker's own options. */
const WORKER = [
  ...APP,
  "concurrency",
  "queues",
  "pool",
  "prefetch",
  "prefetch-multiplier",
  "hostname",
  "acks-late",
  "reject-on-worker-lost",
  "time-limit",
  "soft-time-limit",
  "max-tasks-per-child",
  "max-memory-per-child",
  "task-permissions",
  "eta-hold-limit",
  "without-remote-control",
  "fail-fast",
  "task-events",
  "heartbeat-interval",
  "without-heartbeat",
  "without-gossip",
  "without-mingle",
  "beat",
  "dashboard",
  ...Object.keys(RELIABILITY_OPTIONS),
  ...Object.keys(SCALE_OPTIONS),
  ...LOGGING,
];

/**
 * The options the worker reads only with another flag on the line: beat's
 * with `-B` (`beat`), the dashboard's with `-D` (`dashboard`).
 *
 * @example
 * ```ts
 * WORKER_GATED_OPTIONS.beat.includes("lease-time"); // true
 * ```
 */
export const WORKER_GATED_OPTIONS: Readonly<Record<"beat" | "dashboard", readonly string[]>> = {
  beat: EMBEDDED_BEAT,
  dashboard: EMBEDDED_DASHBOARD,
};

/**
 * The options the worker reads: with `-B` also beat's, with `-D` also the
 * dashboard's.
 *
 * @example
 * ```ts
 * workerOptions({ beat: true }).includes("lease-time"); // true
 * workerOptions({}).includes("lease-time"); // false
 * ```
 *
 * @param values the parsed flags (`beat`, `dashboard`)
 * @returns the option names
 */
export function workerOptions(values: { beat?: boolean; dashboard?: boolean }): string[] {
  return [
    ...WORKER,
    ...(values.beat ? EMBEDDED_BEAT : []),
    ...(values.dashboard ? EMBEDDED_DASHBOARD : []),
  ];
}

/**
 * The options of the command a command line names, for the "did you mean"
 * of an option `parseArgs` does not know: `call -a` is not taken for
 * schedule's `--at`. Every option when the command is not known.
 *
 * @example
 * ```ts ignore
 * optionsOfCommandLine(["call", "t.add", "--kwarg", "{}"]).includes("kwargs"); // true
 * optionsOfCommandLine(["call", "t.add", "--kwarg", "{}"]).includes("at"); // false
 * ```
 *
 * @param args the command-line arguments
 * @returns the long option names the command reads
 */
export function optionsOfCommandLine(args: string[]): readonly string[] {
  const { positionals } = parseArgs({
    args,
    options: OPTIONS,
    allowPositionals: true,
    strict: false,
  });
  const command = positionals[0] ?? "worker";
  if (command === "worker") return workerOptions({ beat: true, dashboard: true });
  return COMMAND_OPTIONS[command] ?? Object.keys(OPTIONS);
}

/** A flag as the help writes it: `-Q/--queues`, `--queue`. */
function flag(name: string): string {
  const short = (OPTIONS as Record<string, { short?: string }>)[name]?.short;
  return short ? `-${short}/--${name}` : `--${name}`;
}

/** Options another command has under a name close to one a command reads. */
const SIBLINGS: Record<string, string> = { queue: "queues", queues: "queue" };

/** What follows `<command> has no <flag>`: the one meant, and whose flag it is. */
function strayHint(name: string, reads: readonly string[]): string {
  const sibling = SIBLINGS[name];
  const meant = sibling !== undefined && reads.includes(sibling)
    ? sibling
    : closestName(name, reads.filter((o) => o !== "help" && o !== "version"));
  const owners = [
    ...(WORKER.includes(name) ? ["the worker"] : []),
    ...Object.keys(COMMAND_OPTIONS).filter((c) => COMMAND_OPTIONS[c].includes(name)),
  ];
  return `${meant !== undefined ? ` (did you mean ${flag(meant)}?)` : ""}${
    owners.length ? `: ${flag(name)} is for ${owners.join(", ")}` : ""
  }`;
}

/** An option as parsed: its name and how it was typed (`-f`, `--force`). */
export interface GivenOption {
  /** The option's long name, without dashes. */
  name: string;
  /** The option as typed. */
  rawName: string;
}

/**
 * Refuse an option the command does not read, saying which one it meant.
 *
 * @example
 * ```ts
 * checkCommandFlags("purge", [{ name: "queue", rawName: "--queue" }], {});
 * // throws: purge has no --queue (did you mean -Q/--queues?): --queue is for call, schedule
 * ```
 *
 * @param command the subcommand (`worker` for the worker)
 * @param given the options on the command line
 * @param values the parsed flags (the worker's `-B` and `-D`)
 * @throws {UsageError} for the first option the command does not read
 */
export function checkCommandFlags(
  command: string,
  given: readonly GivenOption[],
  values: { beat?: boolean; dashboard?: boolean },
): void {
  const reads = command === "worker" ? workerOptions(values) : COMMAND_OPTIONS[command];
  if (reads === undefined) return; // an unknown command is refused by its name
  const help = `; run ${command === "worker" ? "" : `${command} `}--help to see its options`;
  for (const { name, rawName } of given) {
    if (reads.includes(name)) continue;
    if (command === "worker" && EMBEDDED_BEAT.includes(name)) {
      throw new UsageError(
        `the worker reads ${rawName} only with -B (beat in this process): add -B, or leave ${rawName} out`,
      );
    }
    if (command === "worker" && EMBEDDED_DASHBOARD.includes(name)) {
      throw new UsageError(
        `the worker reads ${rawName} only with -D (the dashboard in this process): add -D, or leave ${rawName} out`,
      );
    }
    if (name === "force" && command !== "purge") throw new UsageError(forceHint(command, rawName));
    const who = command === "worker" ? "the worker" : command;
    throw new UsageError(`${who} has no ${rawName}${strayHint(name, reads)}${help}`);
  }
}

/**
 * The refusal of `-f` outside purge: Celery's worker and beat take `-f` for
 * `--logfile`, here it is purge's `--force`.
 *
 * @example
 * ```ts
 * forceHint("worker", "-f"); // "the worker has no -f: ... write --logfile PATH"
 * ```
 *
 * @param command the subcommand
 * @param rawName the option as typed
 * @returns the message
 */
export function forceHint(command: string, rawName: string): string {
  const who = command === "worker" ? "the worker" : command;
  return `${who} has no ${rawName}: -f/--force is purge's; for a log file (Celery's ` +
    "-f/--logfile) write --logfile PATH";
}
