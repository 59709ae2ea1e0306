// deno-lint-ignore-file no-console
/**
 * The `worker.ts` command line: parse it, set up logging, load the app and
 * run the subcommand (the worker itself in worker_command.ts, the options
 * and usage text in options.ts).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { getLogger } from "@logtape/logtape";
import { maskPassword } from "../broker/errors.ts";
import { Celery } from "../client/app.ts";
import { hostName, takeUnreadEnv } from "../client/runtime.ts";
import { nodePath } from "../worker/node_name.ts";
import { CELERIAC_VERSION as VERSION } from "../client/version.ts";
import { loadApp, moduleUrl, parseAppSpec } from "../worker/load_app.ts";
import { appModuleExpected } from "./app_module_errors.ts";
import { parked, purge } from "./admin.ts";
import { argumentError, closestName, joinNegativeValues } from "./arg_errors.ts";
import { runBeat, runSchedule, SCHEDULE_ACTIONS } from "./beat.ts";
import { type CompletionSpec, runCompletion, SHELLS } from "./completion.ts";
import { commandHelp } from "./command_help.ts";
import {
  checkCommandFlags,
  COMMAND_OPTIONS,
  forceHint,
  optionsOfCommandLine,
  WORKER_GATED_OPTIONS,
  workerOptions,
} from "./command_flags.ts";
import { runDashboard } from "./dashboard.ts";
import { SERIALIZERS } from "./call_options.ts";
import { CONTROL_COMMANDS, INSPECT_COMMANDS } from "./inspect.ts";
import { LOG_FORMATS, type LogFields, parseLogFormat } from "./log_output.ts";
import { cliLogLevels, closeLogging, LOG_LEVEL_NAMES, setupLogging } from "./logging.ts";
import { isMonitorCommand, MONITOR_COMMANDS, runMonitor } from "./monitor.ts";
import { resultTaskFlag } from "./call.ts";
import { positiveInt } from "./flag_numbers.ts";
import {
  APP_OPTIONAL,
  nodeFlag,
  OPTIONS,
  POOLS,
  purgeQueues,
  USAGE,
  type Values,
} from "./options.ts";
import { applyV8Flags, DASHBOARD_V8_FLAGS, DEFAULT_V8_FLAGS, takesV8Flags } from "./v8_flags.ts";
import { LEAKED_THREADS_EXIT_CODE, startOver } from "./start_over.ts";
import { logV8Flags, type Run, runWorker } from "./worker_command.ts";
import { appUrlFlags, flagUrlSource } from "./url_flags.ts";
import { EXIT_CODES, exitCodeFor } from "./exit_codes.ts";
import { unreadConnectionHint } from "./permission_hint.ts";
import { UsageError } from "./exit_codes.ts";

const log = getLogger(["celeriac", "cli"]);

async function openApp(
  command: string,
  spec: string | undefined,
  values: Values,
): Promise<{ app: Celery; url: string; exportName?: string }> {
  if (!spec && !APP_OPTIONAL.has(command)) {
    throw new UsageError(
      `--app is required for ${command}: the module that exports your Celery app ` +
        "(--app ./tasks.ts, or --app ./tasks.ts:celery for another export name)",
    );
  }
  const { module, exportName } = spec ? parseAppSpec(spec) : { module: "", exportName: undefined };
  const url = spec ? moduleUrl(module, Deno.cwd()) : "";
  const app = spec
    ? await loadApp(url, exportName).catch((err) => appModuleExpected(err, spec, url))
    : new Celery();
  const { broker, backend } = appUrlFlags(values);
  if (broker !== undefined || backend !== undefined) {
    takeUnreadEnv(); // configure() reads the settings again: what is still unread is asked anew
    app.configure({
      ...(broker !== undefined ? { broker } : {}),
      ...(backend !== undefined ? { backend } : {}),
    });
  }
  return { app, url, exportName };
}

/**
 * Warn when Deno's permissions kept `CELERY_BROKER_URL` (or, for the commands
 * that read results, `CELERY_RESULT_BACKEND`) from the app (see
 * {@link unreadConnectionHint}): in the log for beat and the dashboard, on
 * stderr for the one-shot commands.
 */
function warnUnreadConnection(command: string, app: Celery, values: Values): void {
  const { broker, backend } = app.config;
  const readsResults = command === "result" || (command === "call" && values.wait === true);
  const hint = unreadConnectionHint(
    takeUnreadEnv().filter((name) => readsResults || name !== "CELERY_RESULT_BACKEND"),
    maskPassword(broker),
    backend === null ? null : maskPassword(backend),
  );
  if (hint === null) return;
  if (command === "beat" || command === "dashboard") log.warn("{hint}", { hint });
  else console.error(`warning: ${hint}`);
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
    if (r.v8Skipped !== null) logV8Flags(r.v8Skipped, "dashboard");
    return runDashboard(r.app, r.values);
  },
  schedule: (r) => runSchedule(r.app, r.positionals.slice(1), r.values),
  purge: (r) =>
    purge(r.app, {
      queues: purgeQueues(
        r.values.queues,
        r.values["exclude-queues"],
        r.app.config.defaultQueue,
      ),
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
    serializer: SERIALIZERS,
  },
  files: ["app", "logfile"],
  commandOptions: {
    ...COMMAND_OPTIONS,
    worker: workerOptions({ beat: true, dashboard: true }),
  },
  // -B's options only once -B is typed, -D's once -D is: without, the worker refuses them.
  gatedOptions: { worker: WORKER_GATED_OPTIONS },
  defaultCommand: "worker",
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
  /**
   * For the `worker` command, when the worker stopped itself because threads
   * of terminated Web Workers still ran (`--leaked-threads-restart`), start
   * this process over with the same command line and environment (`execve`:
   * same process id, the old threads gone) instead of resolving with
   * {@link LEAKED_THREADS_EXIT_CODE}; when it cannot (it needs `-A`), it
   * resolves with that code. Only for a program's entry point. Default false.
   */
  startOver?: boolean;
}

/**
 * Run the command line; resolves with the exit code (see {@link EXIT_CODES}).
 *
 * @example
 * ```ts
 * import { main } from "@celeriac/celeriac/worker";
 * Deno.exit(await main(["--app", "./tasks.ts", "-c", "2"]));
 * ```
 *
 * @param args command-line arguments (without the script name)
 * @param options see {@link MainOptions}
 * @returns the process exit code
 */
export async function main(args: string[], options: MainOptions = {}): Promise<number> {
  const code = await runCommand(args, options);
  if (code === LEAKED_THREADS_EXIT_CODE && options.startOver) {
    console.error(
      `celeriac: cannot start over after leaked threads (${startOver()}); exiting with status ${code}`,
    );
  }
  return code;
}

async function runCommand(args: string[], options: MainOptions): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(args, OPTIONS),
      allowPositionals: true,
      options: OPTIONS,
      tokens: true,
    });
  } catch (err) {
    console.error(argumentError(err as Error, optionsOfCommandLine(args)));
    return EXIT_CODES.usage;
  }
  const { values, positionals, tokens } = parsed;
  const command = positionals[0] ?? "worker";
  const known = isMonitorCommand(command) || Object.hasOwn(RUNNERS, command) ||
    command === "completion";
  // `monitor --help`: the unknown command is refused, not answered with the general help.
  if (values.help && known) {
    console.log((positionals[0] && commandHelp(positionals[0])) || USAGE);
    return 0;
  }
  if (values.version) {
    console.log(`celeriac ${VERSION} (deno ${Deno.version.deno})`);
    return 0;
  }
  const given = tokens.filter((t) => t.kind === "option");
  if (!known) {
    // `-f w.log` (Celery's --logfile): -f is a flag here, so the path was taken for a command.
    const force = given.find((t) => t.name === "force");
    if (force) {
      console.error(`error: ${forceHint("worker", force.rawName)}`);
      return EXIT_CODES.usage;
    }
    const guess = closestName(command, COMPLETION.commands);
    console.error(
      `error: unknown command "${command}"${
        guess ? ` (did you mean ${guess}?)` : ""
      }; run with --help to see the commands`,
    );
    return EXIT_CODES.usage;
  }
  try {
    checkCommandFlags(command, given, values);
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return EXIT_CODES.usage;
  }
  if (command === "completion") return runCompletion(positionals.slice(1), COMPLETION);
  // The dashboard too: its young generation, 1 MiB instead of V8's growing default, cuts its
  // CPU per event (see v8_flags.ts).
  const v8Skipped = options.v8Flags && takesV8Flags(command)
    ? applyV8Flags(command === "dashboard" ? DASHBOARD_V8_FLAGS : DEFAULT_V8_FLAGS)
    : null;
  const logFields: LogFields = { hostname: hostName() };
  let opened: Celery | undefined;
  try {
    const levels = cliLogLevels(values.loglevel);
    const logfile = command === "worker" && values.logfile !== undefined
      ? nodePath(values.logfile, nodeFlag(values.hostname))
      : values.logfile;
    await setupLogging(levels.level, {
      format: parseLogFormat(values["log-format"] ?? "text"),
      logfile,
      fields: logFields,
    }, levels.taskLevel);
    const { app, url, exportName } = await openApp(command, values.app, values);
    opened = app;
    if (command !== "worker") warnUnreadConnection(command, app, values); // the worker's banner says it
    if (isMonitorCommand(command)) {
      const read = command === "result" ? resultTaskFlag(values, given) : values;
      return await runMonitor(command, app, positionals.slice(1), read);
    }
    const run = RUNNERS[command]; // known: checked above
    const release = options.releaseStartupPages === true;
    return await run({ app, url, exportName, values, positionals, logFields, v8Skipped, release });
  } catch (caught) {
    const err = opened ? flagUrlSource(caught, opened.urlSources, appUrlFlags(values)) : caught;
    console.error(`error: ${(err as Error).message}`);
    return exitCodeFor(err, command);
  } finally {
    await closeLogging();
  }
}
