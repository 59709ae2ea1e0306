/**
 * The `worker` command: a worker built from the command line's flags, run
 * until a signal stops it, with the beat and dashboard it may run along.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { MAX_TIMER_MS } from "../broker/long_timeout.ts";
import type { Celery } from "../client/app.ts";
import { takeUnreadEnv } from "../client/runtime.ts";
import { CELERIAC_VERSION as VERSION } from "../client/version.ts";
import { parseTaskPermissions, planSandboxes, sandboxedTasks } from "../worker/sandboxes.ts";
import { LeakedThreadsError } from "../worker/leaked_threads.ts";
import { Worker } from "../worker/worker.ts";
import { bannerFields } from "./banner.ts";
import { beatFromFlags, configureBeatStore } from "./beat.ts";
import { openAppConnections, retryOnStartup } from "./connect_retry.ts";
import { dashboardFromFlags, startDashboard } from "./dashboard.ts";
import type { LogFields } from "./log_output.ts";
import { positiveInt, positiveNumber } from "./flag_numbers.ts";
import { nodeFlag, POOLS, prefetchOption, queueList, type Values } from "./options.ts";
import { permissionHint } from "./permission_hint.ts";
import { reliabilityOptions } from "./reliability.ts";
import { scaleWorkerOptions } from "./scale_flags.ts";
import { LEAKED_THREADS_EXIT_CODE } from "./start_over.ts";
import { startReleasingPages } from "./startup_pages.ts";
import { DASHBOARD_V8_FLAGS, DEFAULT_V8_FLAGS, V8_FLAGS_ENV } from "./v8_flags.ts";
import { grantedEnv } from "./permissions.ts";
import { EXIT_CODES, flagValue, UsageError } from "./exit_codes.ts";

const log = getLogger(["celeriac", "cli"]);

/** Celery's worker flags taken for its command lines, with nothing to turn off here. */
const NO_OP_FLAGS: Readonly<Record<string, string>> = {
  "without-gossip": "Celeriac workers do not follow each other's events (Celery's gossip)",
  "without-mingle": "Celeriac workers read the revoked ids from the broker at start, not " +
    "from the other workers (Celery's mingle)",
};

/**
 * What a subcommand runs with.
 *
 * @example
 * ```ts ignore
 * await runWorker({ app, url, values, positionals, logFields, v8Skipped: null, release: false });
 * ```
 */
export interface Run {
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

/**
 * Log, at DEBUG (a detail of tuning, not news at every start), the V8 flags
 * in effect, or why the process was not started over with them.
 *
 * @example
 * ```ts ignore
 * logV8Flags(applyV8Flags());
 * ```
 *
 * @param skipped what `applyV8Flags` said: undefined when applied, else why not
 * @param command whose defaults they are: `worker` ({@link DEFAULT_V8_FLAGS}, the default)
 *   or `dashboard` ({@link DASHBOARD_V8_FLAGS})
 */
export function logV8Flags(
  skipped: string | undefined,
  command: "worker" | "dashboard" = "worker",
): void {
  if (skipped === undefined) {
    log.debug(
      "V8 flags {flags}, MALLOC_ARENA_MAX={arenas}, DENO_NO_PROMPT={noPrompt} (the {command}'s defaults; {env}= turns them off)",
      {
        flags: grantedEnv("DENO_V8_FLAGS") ?? "",
        arenas: grantedEnv("MALLOC_ARENA_MAX") ?? "unset",
        noPrompt: grantedEnv("DENO_NO_PROMPT") ?? "unset",
        command,
        env: V8_FLAGS_ENV,
      },
    );
  } else {
    log.debug("V8 flags: not started over with {defaults}: {skipped}", {
      defaults: grantedEnv(V8_FLAGS_ENV) ??
        (command === "dashboard" ? DASHBOARD_V8_FLAGS : DEFAULT_V8_FLAGS),
      skipped,
    });
  }
}

/**
 * `--heartbeat-interval`: seconds > 0 that a timer holds (the worker refuses more, once built).
 *
 * @throws {UsageError} for anything else
 */
function heartbeatSeconds(value: string | undefined): number | undefined {
  const seconds = positiveNumber(value, "--heartbeat-interval");
  if (seconds !== undefined && seconds * 1000 > MAX_TIMER_MS) {
    throw new UsageError(
      `--heartbeat-interval needs at most ${MAX_TIMER_MS / 1000} seconds (24.8 days, what a ` +
        `timer holds), got "${value}"`,
    );
  }
  return seconds;
}

/**
 * Refuse the flags the inline pool cannot honour, before anything connects
 * (the worker would refuse them only once connected, as a stop with status 1).
 *
 * @throws {UsageError} for `-P inline` with `--autoscale`, with `--task-permissions` other
 *   than `inherit`, or with an app whose tasks set `permissions`
 */
function inlinePoolFlags(pool: string, app: Celery, values: Values): void {
  if (pool !== "inline") return;
  if (values.autoscale !== undefined) {
    throw new UsageError(
      `--autoscale grows and shrinks Web Workers, which -P inline has none of: use -P threads ` +
        `(the default) or leave out --autoscale`,
    );
  }
  const permissions = values["task-permissions"] as string | undefined;
  if (
    permissions !== undefined && flagValue(() => parseTaskPermissions(permissions)) !== "inherit"
  ) {
    throw new UsageError(
      `--task-permissions ${permissions}: -P inline runs tasks in the worker's own thread and ` +
        `cannot sandbox them: use -P threads (the default) or leave out --task-permissions`,
    );
  }
  const sandboxed = sandboxedTasks(planSandboxes(app.tasks.values()));
  if (sandboxed.length) {
    throw new UsageError(
      `-P inline runs tasks in the worker's own thread and cannot sandbox them, and ` +
        `${sandboxed.join(", ")} set permissions: use -P threads (the default), or remove ` +
        `their permissions option to run them with the worker's own`,
    );
  }
}

/** Celery's pools a `-P` from a Celery command line may name, and what to give here instead. */
const CELERY_POOLS: Record<string, string> = {
  prefork: "Celery's prefork pool is -P threads here (the default: -c Web Workers)",
  processes: "Celery's prefork pool is -P threads here (the default: -c Web Workers)",
  solo: "Celery's solo pool is -P inline here (tasks on the main thread)",
  gevent: "use -P inline: it runs async tasks many at a time on the main thread, as gevent does",
  eventlet:
    "use -P inline: it runs async tasks many at a time on the main thread, as eventlet does",
};

/**
 * The `worker` command: start a worker (and the `--beat` / `--dashboard`
 * it runs along), stop it on SIGINT / SIGTERM (twice, or SIGQUIT: cold).
 *
 * @example
 * ```ts ignore
 * const code = await runWorker(run);
 * ```
 *
 * @param run the app, its module and the command line's values
 * @returns the exit code, once the worker stopped: 0, 1 when it stopped
 *   itself for a failure, {@link LEAKED_THREADS_EXIT_CODE} for leaked threads
 *   (0 when a stop signal came during that shutdown: the stop wins)
 */
export async function runWorker(
  { app, url, exportName, values, logFields, v8Skipped, release }: Run,
): Promise<number> {
  const pool = (values.pool as string | undefined) ?? "threads";
  if (pool !== "threads" && pool !== "inline") {
    const celery = Object.hasOwn(CELERY_POOLS, pool) ? `: ${CELERY_POOLS[pool]}` : "";
    throw new UsageError(
      `--pool must be ${POOLS.map((p) => `"${p}"`).join(" or ")}, got "${pool}"${celery}`,
    );
  }
  inlinePoolFlags(pool, app, values);
  const worker = new Worker({
    app,
    appModule: url,
    appExport: exportName,
    pool,
    concurrency: positiveInt(values.concurrency as string | undefined, "--concurrency"),
    prefetch: prefetchOption(values),
    queues: queueList(values.queues as string | undefined),
    hostname: nodeFlag(values.hostname as string | undefined),
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
    heartbeatInterval: values["without-heartbeat"]
      ? 0
      : heartbeatSeconds(values["heartbeat-interval"] as string | undefined),
    taskPermissions: values["task-permissions"] === undefined
      ? undefined
      : flagValue(() => parseTaskPermissions(values["task-permissions"] as string)),
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
  if (values.autoscale !== undefined && values.concurrency !== undefined) {
    log.warn(
      "-c {concurrency} is ignored with --autoscale {autoscale}: the pool grows and shrinks " +
        "between MIN and MAX Web Workers (leave out one of the two)",
      { concurrency: values.concurrency, autoscale: values.autoscale },
    );
  }
  const hint = permissionHint({
    unreadEnv: takeUnreadEnv(),
    usesHostName: /%[hnd]|@$|^$/.test((values.hostname as string | undefined) ?? "%h"),
    heartbeats: !values["without-heartbeat"],
  });
  if (hint) log[hint.level]("{message}", { message: hint.message });
  for (const [flag, why] of Object.entries(NO_OP_FLAGS)) {
    if (values[flag as keyof Values]) log.info("--{flag} changes nothing: {why}", { flag, why });
  }
  configureBeatStore(app, values);
  const beat = values.beat ? beatFromFlags(app, values) : null;
  const dashboard = values.dashboard ? await dashboardFromFlags(app, values) : null;
  let signals = 0;
  // A stop signal wins over a restart for leaked threads that was under way: the command exits.
  let stopAsked = false;
  // A second signal (or SIGQUIT) stops waiting for beat's stop, as `beat` itself does.
  const forced = Promise.withResolvers<void>();
  const connecting = new AbortController();
  const onSignal = () => {
    signals++;
    stopAsked = true;
    if (!connecting.signal.aborted) {
      connecting.abort(
        new DOMException("Stopped before the broker could be reached", "AbortError"),
      );
    } else if (signals === 1) {
      log.info("Shutting down: finishing running tasks (signal again to requeue them and exit)");
      beat?.stop();
      worker.stop();
    } else if (signals === 2) {
      forced.resolve();
      worker.terminate();
    }
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const onQuit = () => { // Celery's cold-shutdown signal
    stopAsked = true;
    forced.resolve();
    void worker.terminate();
  };
  Deno.addSignalListener("SIGQUIT", onQuit);
  try {
    try {
      // Beat's store (a --beat-store beside the broker) is waited for as the broker is; a bad
      // entry or an amqp:// broker without one stops the command before the worker runs.
      await retryOnStartup(async (signal) => {
        await openAppConnections(app, signal);
        await beat?.start();
      }, {
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
    // Before the worker: a port in use stops the command first.
    if (dashboard) await startDashboard(dashboard, values);
    await (release ? startReleasingPages(() => worker.start()) : worker.start());
    await worker.finished;
  } finally {
    await dashboard?.stop();
    await Promise.race([beat?.stop(), forced.promise]);
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGQUIT", onQuit);
    await app.close();
  }
  log.info("{hostname} stopped: {stats}", {
    hostname: worker.hostname,
    stats: JSON.stringify(worker.stats),
  });
  if (worker.failure instanceof LeakedThreadsError) {
    if (!stopAsked) return LEAKED_THREADS_EXIT_CODE;
    log.info("Not starting over for the leaked threads: a signal asked the worker to stop");
    return 0;
  }
  return worker.failure ? EXIT_CODES.failed : EXIT_CODES.ok;
}
