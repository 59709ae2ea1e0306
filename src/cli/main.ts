// deno-lint-ignore-file no-console
/**
 * The `worker.ts` command line: run a worker, or inspect parked messages.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { parseArgs } from "node:util";
import type { Celery } from "../client/app.ts";
import { hostName } from "../client/runtime.ts";
import { loadApp, moduleUrl, parseAppSpec } from "../worker/load_app.ts";
import { parseTaskPermissions } from "../worker/sandboxes.ts";
import { Worker } from "../worker/worker.ts";
import { parked, purge } from "./admin.ts";
import {
  BEAT_OPTIONS,
  BEAT_USAGE,
  beatFromFlags,
  configureBeatStore,
  runBeat,
  runSchedule,
  SCHEDULE_ACTIONS,
} from "./beat.ts";
import { RELIABILITY_OPTIONS, RELIABILITY_USAGE, reliabilityOptions } from "./reliability.ts";
import { SCALE_HELP, SCALE_OPTIONS, scaleWorkerOptions } from "./scale_flags.ts";
import { argumentError } from "./arg_errors.ts";
import {
  DASHBOARD_OPTIONS,
  DASHBOARD_USAGE,
  dashboardFromFlags,
  runDashboard,
} from "./dashboard.ts";
import { bannerFields } from "./banner.ts";
import { connectOnStartup } from "./connect_retry.ts";
import { LOG_FORMATS, type LogFields, parseLogFormat } from "./log_output.ts";
import { cliLogLevels, closeLogging, LOG_LEVEL_NAMES, setupLogging } from "./logging.ts";
import { CELERIAC_VERSION as VERSION } from "../client/version.ts";
import {
  isMonitorCommand,
  MONITOR_COMMANDS,
  MONITOR_OPTIONS,
  MONITOR_USAGE,
  runMonitor,
} from "./monitor.ts";
import { type CompletionSpec, runCompletion, SHELLS } from "./completion.ts";
import { applyV8Flags, DEFAULT_V8_FLAGS, V8_FLAGS_ENV } from "./v8_flags.ts";
import { startReleasingPages } from "./startup_pages.ts";
import { CONTROL_COMMANDS, INSPECT_COMMANDS } from "./inspect.ts";

const log = getLogger(["celeriac", "cli"]);

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
  -A, --app MODULE[:EXPORT]  module exporting the Celery app (required)
  -b, --broker URL           broker URL (default: the app's, CELERY_BROKER_URL, or kv://)
      --backend URL          result backend URL (default: the app's or CELERY_RESULT_BACKEND)
  -c, --concurrency N        Web Workers in the pool (default: number of CPUs)
  -Q, --queues a,b           queues to consume (default: the app's default queue, "celery")
  -P, --pool threads|inline  run tasks in Web Workers (default) or on the main thread
      --prefetch-multiplier N, --prefetch N
                             tasks each Web Worker holds at once, running or waiting
                             (default: adaptive, 1 for long CPU-bound tasks up to 32 for
                             short ones; inline pool: up to 100)
  -n, --hostname NAME        node name, %h = host name (default celeriac@%h)
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
                             AMQP: re-publish ETA tasks held longer than this (default 600),
                             so RabbitMQ's consumer_timeout never closes the channel
${SCALE_HELP}
      --without-remote-control
                             do not answer celery.pidbox commands (ping, revoke, ...)${RELIABILITY_USAGE}
      --fail-fast            exit at once when the broker or result backend cannot be reached
                             at start (default: retry every 2, 4, ... 30 s, 100 times, as
                             Celery's broker_connection_retry_on_startup)
  -E, --task-events          send task events for monitors (Flower, celery events)
      --heartbeat-interval SECONDS
                             seconds between worker-heartbeat events (default 2)
      --without-heartbeat    send no worker events (online, heartbeat, offline)
  -l, --loglevel LEVEL       DEBUG, INFO, WARNING, ERROR, CRITICAL (default: INFO for the
                             worker's own lines, WARNING for per-task lines, as Celery)
      --log-format text|json text (default) or JSON Lines: one object per record with
                             hostname, task_id and task_name as fields
      --logfile PATH         append log records to PATH instead of the console
  -f, --force                purge: do not ask before deleting
  -h, --help                 show this help
      --version              print the version and exit

Signals: SIGINT/SIGTERM once = warm shutdown (finish running tasks);
         twice, or SIGQUIT = cold shutdown (after --soft-shutdown-timeout, requeue
         running tasks and exit).`;

/** The `--pool` values. */
const POOLS = ["threads", "inline"] as const;

function positiveNumber(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    throw new TypeError(`${flag} needs a number of seconds > 0, got "${value}"`);
  }
  return n;
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new TypeError(`${flag} needs a whole number >= 1, got "${value}"`);
  }
  return n;
}

/** `--prefetch-multiplier` (Celery's name) or `--prefetch`; both at once must agree. */
function prefetchOption(values: Record<string, string | boolean | undefined>): number | undefined {
  const multiplier = positiveInt(
    values["prefetch-multiplier"] as string | undefined,
    "--prefetch-multiplier",
  );
  const prefetch = positiveInt(values.prefetch as string | undefined, "--prefetch");
  if (multiplier !== undefined && prefetch !== undefined && multiplier !== prefetch) {
    throw new TypeError(
      "--prefetch-multiplier and --prefetch are the same setting: give one of them",
    );
  }
  return multiplier ?? prefetch;
}

function queueList(value: string | undefined): string[] | undefined {
  const list = value?.split(",").map((q) => q.trim()).filter(Boolean);
  return list?.length ? list : undefined;
}

async function openApp(spec: string | undefined, broker?: string, backend?: string): Promise<{
  app: Celery;
  url: string;
  exportName?: string;
}> {
  if (!spec) throw new TypeError("--app is required: the module that exports your Celery app");
  const { module, exportName } = parseAppSpec(spec);
  const url = moduleUrl(module, Deno.cwd());
  const app = await loadApp(url, exportName);
  if (broker !== undefined || backend !== undefined) {
    app.configure({
      ...(broker !== undefined ? { broker } : {}),
      ...(backend !== undefined ? { backend } : {}),
    });
  }
  return { app, url, exportName };
}

/** The command line's options, as `parseArgs` reads them. */
const OPTIONS = {
  app: { type: "string", short: "A" },
  broker: { type: "string", short: "b" },
  backend: { type: "string" },
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
  "max-memory-per-child": { type: "string" },
  "task-permissions": { type: "string" },
  loglevel: { type: "string", short: "l" },
  requeue: { type: "boolean" },
  force: { type: "boolean", short: "f" },
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

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>[
  "values"
];

/** What a subcommand runs with. */
interface Run {
  app: Celery;
  url: string;
  exportName?: string;
  values: Values;
  positionals: string[];
  logFields: LogFields;
  /** What `applyV8Flags` said: undefined when applied, why not, or null when not asked. */
  v8Skipped: string | undefined | null;
  /** Release the start-up pages once the worker is ready. */
  release: boolean;
}

/** The subcommands besides the monitoring ones (`monitor.ts`) and `completion`. */
const RUNNERS: Record<string, (r: Run) => Promise<number>> = {
  worker: (r) => runWorker(r),
  parked: (r) =>
    parked(r.app, {
      requeue: r.values.requeue ?? false,
      limit: positiveInt(r.values.limit, "--limit"),
    }).finally(() => r.app.close()),
  beat: (r) => runBeat(r.app, r.values),
  dashboard: (r) => {
    if (r.v8Skipped !== null) logV8Flags(r.v8Skipped);
    return runDashboard(r.app, r.values);
  },
  schedule: (r) => runSchedule(r.app, r.positionals.slice(1), r.values),
  purge: (r) =>
    purge(r.app, {
      queues: queueList(r.values.queues) ?? [r.app.config.defaultQueue],
      force: r.values.force ?? false,
    }).finally(() => r.app.close()),
};

/** What `completion` completes: the tables above and the inspect / control names. */
const COMPLETION: CompletionSpec = {
  commands: [...Object.keys(RUNNERS), ...MONITOR_COMMANDS, "completion"],
  options: OPTIONS,
  subcommands: {
    inspect: INSPECT_COMMANDS,
    control: CONTROL_COMMANDS,
    schedule: SCHEDULE_ACTIONS,
    completion: SHELLS,
  },
  values: {
    pool: POOLS,
    loglevel: LOG_LEVEL_NAMES,
    "log-format": LOG_FORMATS,
  },
  files: ["app", "logfile"],
};

/**
 * Options of {@link main}.
 *
 * @example
 * ```ts
 * import type { MainOptions } from "@celeriac/celeriac/worker";
 * const options: MainOptions = { v8Flags: true };
 * ```
 */
export interface MainOptions {
  /**
   * For the `worker` and `dashboard` commands, start this process over with
   * the worker's V8 flags when they are not in effect (see the README's "Run a
   * worker"). Only for a program's entry point: the process image is
   * replaced. Default false.
   */
  v8Flags?: boolean;
  /**
   * For the `worker` command, release the executable's start-up pages once
   * the worker is ready (see `startup_pages.ts`). Default false.
   */
  releaseStartupPages?: boolean;
}

/**
 * Run the command line; resolves with the exit code.
 *
 * @example
 * ```ts ignore
 * import { main } from "@celeriac/celeriac/worker";
 * Deno.exit(await main(["--app", "./tasks.ts", "-c", "2"]));
 * ```
 *
 * @param args command-line arguments (without the script name)
 * @param options see {@link MainOptions}
 * @returns the process exit code
 */
export async function main(args: string[], options: MainOptions = {}): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: OPTIONS,
    });
  } catch (err) {
    console.error(argumentError(err as Error, Object.keys(OPTIONS)));
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.version) {
    console.log(`celeriac ${VERSION} (deno ${Deno.version.deno})`);
    return 0;
  }
  const command = positionals[0] ?? "worker";
  if (command === "completion") return runCompletion(positionals.slice(1), COMPLETION);
  // The dashboard too: its young generation, 1 MiB instead of V8's growing default, cuts its
  // CPU per event (see v8_flags.ts).
  const v8Skipped = options.v8Flags && (command === "worker" || command === "dashboard")
    ? applyV8Flags()
    : null;
  const logFields: LogFields = { hostname: hostName() };
  try {
    const levels = cliLogLevels(values.loglevel);
    await setupLogging(levels.level, {
      format: parseLogFormat(values["log-format"] ?? "text"),
      logfile: values.logfile,
      fields: logFields,
    }, levels.taskLevel);
    const { app, url, exportName } = await openApp(values.app, values.broker, values.backend);
    if (isMonitorCommand(command)) {
      return await runMonitor(command, app, positionals.slice(1), values);
    }
    const run = Object.hasOwn(RUNNERS, command) ? RUNNERS[command] : undefined;
    if (!run) {
      console.error(`error: unknown command "${command}"; run with --help to see the commands`);
      return 2;
    }
    const release = options.releaseStartupPages === true;
    return await run({ app, url, exportName, values, positionals, logFields, v8Skipped, release });
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 1;
  } finally {
    await closeLogging();
  }
}

function logV8Flags(skipped: string | undefined): void {
  const flags = Deno.env.get("DENO_V8_FLAGS") ?? "";
  if (skipped === undefined) {
    log.info(
      "V8 flags {flags}, MALLOC_ARENA_MAX={arenas} (the worker's defaults; {env}= turns them off)",
      {
        flags,
        arenas: Deno.env.get("MALLOC_ARENA_MAX") ?? "unset",
        env: V8_FLAGS_ENV,
      },
    );
  } else {
    log.debug("V8 flags: not started over with {defaults}: {skipped}", {
      defaults: Deno.env.get(V8_FLAGS_ENV) ?? DEFAULT_V8_FLAGS,
      skipped,
    });
  }
}

async function runWorker(
  { app, url, exportName, values, logFields, v8Skipped, release }: Run,
): Promise<number> {
  const pool = (values.pool as string | undefined) ?? "threads";
  if (pool !== "threads" && pool !== "inline") {
    throw new TypeError(`--pool must be ${POOLS.map((p) => `"${p}"`).join(" or ")}, got "${pool}"`);
  }
  const worker = new Worker({
    app,
    appModule: url,
    appExport: exportName,
    pool,
    concurrency: positiveInt(values.concurrency as string | undefined, "--concurrency"),
    prefetch: prefetchOption(values),
    queues: queueList(values.queues as string | undefined),
    hostname: values.hostname as string | undefined,
    acksLate: values["acks-late"] as boolean | undefined,
    rejectOnWorkerLost: values["reject-on-worker-lost"] as boolean | undefined,
    timeLimit: positiveNumber(values["time-limit"] as string | undefined, "--time-limit"),
    softTimeLimit: positiveNumber(
      values["soft-time-limit"] as string | undefined,
      "--soft-time-limit",
    ),
    maxTasksPerChild: positiveInt(
      values["max-tasks-per-child"] as string | undefined,
      "--max-tasks-per-child",
    ),
    maxMemoryPerChild: positiveInt(
      values["max-memory-per-child"] as string | undefined,
      "--max-memory-per-child",
    ),
    etaHoldLimit: positiveNumber(
      values["eta-hold-limit"] as string | undefined,
      "--eta-hold-limit",
    ),
    remoteControl: values["without-remote-control"] ? false : undefined,
    ...scaleWorkerOptions(values),
    taskEvents: values["task-events"] as boolean | undefined,
    heartbeatInterval: values["without-heartbeat"] ? 0 : positiveNumber(
      values["heartbeat-interval"] as string | undefined,
      "--heartbeat-interval",
    ),
    taskPermissions: values["task-permissions"] === undefined
      ? undefined
      : parseTaskPermissions(values["task-permissions"] as string),
    ...reliabilityOptions(values),
  });
  logFields.hostname = worker.hostname;
  log.info("celeriac {version} {hostname}: app {app}, broker {broker}, results {backend}", {
    ...bannerFields({
      version: VERSION,
      hostname: worker.hostname,
      app: url,
      broker: app.config.broker,
      backend: app.config.backend,
    }),
  });
  if (v8Skipped !== null) logV8Flags(v8Skipped);
  configureBeatStore(app, values);
  const beat = values.beat ? beatFromFlags(app, values) : null;
  const dashboard = values.dashboard ? dashboardFromFlags(app, values) : null;
  let signals = 0;
  const connecting = new AbortController();
  const onSignal = () => {
    signals++;
    if (!connecting.signal.aborted) {
      connecting.abort(
        new DOMException("Stopped before the broker could be reached", "AbortError"),
      );
    } else if (signals === 1) {
      log.info("Shutting down: finishing running tasks (signal again to requeue them and exit)");
      beat?.stop();
      worker.stop();
    } else if (signals === 2) {
      worker.terminate();
    }
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const onQuit = () => void worker.terminate(); // Celery's cold-shutdown signal
  Deno.addSignalListener("SIGQUIT", onQuit);
  try {
    try {
      await connectOnStartup(app, {
        failFast: values["fail-fast"] as boolean | undefined,
        signal: connecting.signal,
      });
    } catch (err) {
      if (!connecting.signal.aborted) throw err;
    }
    if (connecting.signal.aborted) {
      log.info("{reason}", { reason: (connecting.signal.reason as Error).message });
      return 0;
    }
    signals = 0;
    connecting.abort();
    await beat?.start(); // first: an unreachable beat store stops the command before the worker runs
    await dashboard?.start(); // before the worker: a port in use stops the command first
    await (release ? startReleasingPages(() => worker.start()) : worker.start());
    await worker.finished;
  } finally {
    await dashboard?.stop();
    await beat?.stop();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGQUIT", onQuit);
    await app.close();
  }
  log.info("{hostname} stopped: {stats}", {
    hostname: worker.hostname,
    stats: JSON.stringify(worker.stats),
  });
  return 0;
}
