/**
 * The `dashboard` sub-command and `worker -D` (the dashboard inside a
 * worker process).
 *
 * @module
 */

import { setPriority } from "node:os";
import { getLogger } from "@logtape/logtape";
import { BrokerConnectionError } from "../broker/errors.ts";
import type { Celery } from "../client/app.ts";
import type { Dashboard } from "../dashboard/server.ts";
import type { DashboardOptionNames } from "../dashboard/errors.ts";
import { CELERIAC_VERSION as VERSION } from "../client/version.ts";
import { granted } from "./permissions.ts";
import { UsageError } from "./exit_codes.ts";
import { positiveInt } from "./flag_numbers.ts";

const log = getLogger(["celeriac", "cli"]);

/** The command-line options of the dashboard, for `parseArgs`. */
export const DASHBOARD_OPTIONS = {
  dashboard: { type: "boolean", short: "D" },
  port: { type: "string" },
  address: { type: "string" },
  "basic-auth": { type: "string" },
  token: { type: "string" },
  "allowed-host": { type: "string" },
  "read-only": { type: "boolean" },
  "hide-args": { type: "boolean" },
  "max-tasks": { type: "string" },
  nice: { type: "string" },
} as const;

/** Usage lines of the dashboard. */
export const DASHBOARD_USAGE = `
  deno run -A worker.ts dashboard --app ./tasks.ts [--port 5555] [--broker URL]
                                                       live web dashboard and /metrics

Dashboard options:
  -D, --dashboard            worker: also serve the dashboard from this process
      --port N               dashboard port (default 5555)
      --address HOST         listen address (default 127.0.0.1; others need auth)
      --basic-auth USER:PASS HTTP Basic credentials; several as u1:p1,u2:p2 (as Flower);
                             or CELERIAC_DASHBOARD_BASIC_AUTH
      --token TOKEN          bearer token for scripts and Prometheus (browsers: as the
                             Basic password); or CELERIAC_DASHBOARD_TOKEN
      --allowed-host HOST    answer this Host too (a reverse proxy's name; several as a,b);
                             without auth only localhost, 127.0.0.1, [::1] are answered
      --read-only            hide every action (revoke, purge, shutdown, ...); still broadcasts
                             enable_events every 5 s, as Flower does, so workers send events
      --hide-args            mask task args, kwargs, results and exception messages
      --max-tasks N          tasks kept in memory (default 10000)
      --nice N               dashboard: CPU priority, as nice(1) (default 10: workers on the
                             same host come first; 0 for normal; needs --allow-sys=setPriority)
  -Q, --queues a,b           dashboard: also show the depth of these queues`;

type Values = Record<string, string | boolean | undefined>;

/** The Dashboard's options as its flags, for the messages of its refusals. */
const FLAG_NAMES: DashboardOptionNames = {
  hostname: { name: "--address", example: "--address 0.0.0.0" },
  basic: { name: "--basic-auth", example: "--basic-auth user:pass" },
  token: { name: "--token", example: "--token TOKEN" },
  allowedHosts: { name: "--allowed-host", example: "--allowed-host dash.example.com" },
};

function port(value: string | undefined): number {
  if (value === undefined) return 5555;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new UsageError(`--port needs a port number 0..65535, got "${value}"`);
  }
  return n;
}

/**
 * A credentials variable, when Deno lets it be read (never a prompt, never
 * Deno's raw "Requires env access" error); a variable it keeps is added to
 * `unread`, for a warning that names the flag to add.
 */
function authEnv(name: string, unread: string[]): string | undefined {
  if (granted({ name: "env", variable: name })) return Deno.env.get(name);
  unread.push(name);
  return undefined;
}

/**
 * A dashboard configured from command-line flags (not started). Its module
 * (with the page's assets) is imported here: a worker without `--dashboard`
 * does not load it (~3 MiB).
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const dashboard = await dashboardFromFlags(app, { port: "5555", "read-only": true });
 * await dashboard.start();
 * ```
 *
 * @param app the app
 * @param values parsed flags
 * @returns the dashboard
 * @throws {UsageError} for bad flags, or off loopback without auth
 */
export async function dashboardFromFlags(app: Celery, values: Values): Promise<Dashboard> {
  const unread: string[] = [];
  const pairs = (values["basic-auth"] as string | undefined) ??
    authEnv("CELERIAC_DASHBOARD_BASIC_AUTH", unread) ?? "";
  const basic = pairs.split(",").filter(Boolean);
  const token = (values.token as string | undefined) ??
    authEnv("CELERIAC_DASHBOARD_TOKEN", unread);
  if (unread.length > 0) {
    log.warn(
      "Deno permissions: {names} not read, no credentials from them (run with --allow-env)",
      {
        names: unread.join(", "),
      },
    );
  }
  const maxTasks = positiveInt(values["max-tasks"] as string | undefined, "--max-tasks");
  const auth = { basic, ...(token !== undefined ? { token } : {}) };
  // Loaded here: a worker without -D loads none of the dashboard.
  const { Dashboard } = await import("../dashboard/server.ts");
  const { DashboardOptionsError } = await import("../dashboard/errors.ts");
  const options = {
    app,
    hostname: (values.address as string | undefined) ?? "127.0.0.1",
    port: port(values.port as string | undefined),
    auth,
    allowedHosts: ((values["allowed-host"] as string | undefined) ?? "").split(",")
      .map((h) => h.trim()).filter(Boolean),
    readOnly: values["read-only"] === true,
    hideArgs: values["hide-args"] === true,
    maxTasks,
    queues: (values.queues as string | undefined)?.split(",").map((q) => q.trim()).filter(Boolean),
    version: VERSION,
  };
  try {
    return new Dashboard(options);
  } catch (err) {
    if (!(err instanceof DashboardOptionsError)) throw err;
    throw new UsageError(err.messageWith(FLAG_NAMES), { cause: err });
  }
}

/**
 * Start a dashboard made by {@link dashboardFromFlags}: a port in use is
 * thrown naming `--port`, the flag that picks another (the class names its
 * `port` option).
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0" });
 * const values = { port: "5555" };
 * await startDashboard(await dashboardFromFlags(app, values), values);
 * ```
 *
 * @param dashboard the dashboard
 * @param values the flags it was made from
 * @throws {Deno.errors.AddrInUse} when the port is taken, naming `--port`
 */
export async function startDashboard(dashboard: Dashboard, values: Values): Promise<void> {
  try {
    await dashboard.start();
  } catch (err) {
    if (!(err instanceof Deno.errors.AddrInUse)) throw err;
    const hostname = (values.address as string | undefined) ?? "127.0.0.1";
    throw new Deno.errors.AddrInUse(
      `Port ${port(values.port as string | undefined)} on ${hostname} is in use: pick another ` +
        "with --port",
      { cause: err },
    );
  }
}

/** The standalone dashboard's default niceness: below the workers it watches. */
export const DASHBOARD_NICE = 10;

/**
 * Lower this process's CPU priority (`--nice`, default
 * {@link DASHBOARD_NICE}), so that a dashboard sharing a host with workers
 * never takes CPU they need: on a busy host it falls behind and catches up
 * (events wait in its connection) instead of slowing the drain. Without
 * `--allow-sys=setPriority` it says so and runs at normal priority.
 *
 * @example
 * ```ts
 * applyNice("10"); // as `nice -n 10`
 * ```
 *
 * @param value the flag's value (undefined: the default)
 * @throws {UsageError} when the value is not a whole number from 0 to 19
 */
export function applyNice(value: string | undefined): void {
  const n = value === undefined ? DASHBOARD_NICE : Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 19) {
    throw new UsageError(`--nice needs a whole number 0..19, got "${value}"`);
  }
  if (n === 0) return;
  if (!granted({ name: "sys", kind: "setPriority" })) {
    log.info(
      "Running at normal CPU priority: grant --allow-sys=setPriority to let the dashboard " +
        "yield the CPU to workers on this host (--nice 0 to keep it and silence this)",
    );
    return;
  }
  try {
    setPriority(n);
  } catch (err) {
    log.warn("Could not lower the CPU priority to nice {n}: {error}", {
      n,
      error: (err as Error).message,
    });
    return;
  }
  // Linux keeps a priority per thread, and the call above set the calling thread's (threads
  // started after it inherit it): V8's garbage-collection and compiler helpers and the
  // runtime's threads, started with the process, kept normal priority, and they spend about a
  // third of the dashboard's CPU while it follows a drain.
  for (const tid of processThreads()) {
    try {
      setPriority(tid, n);
    } catch {
      // the thread ended since it was listed
    }
  }
}

/**
 * The ids of this process's threads (Linux's `/proc/self/task`); none where
 * that cannot be read: on other systems (where the priority is the
 * process's), or without `-A` (Deno reads `/proc` with all permissions
 * only; the other threads keep theirs). Without read permission for it no
 * read is tried, so that Deno does not prompt for one.
 */
function processThreads(): number[] {
  const dir = "/proc/self/task";
  if (!granted({ name: "read", path: dir })) return [];
  try {
    return [...Deno.readDirSync(dir)].map((e) => Number(e.name));
  } catch {
    return [];
  }
}

/**
 * `worker.ts dashboard`: serve until SIGINT/SIGTERM; resolves with the exit code.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * Deno.exitCode = await runDashboard(app, { port: "5555" });
 * ```
 *
 * @param app the app
 * @param values parsed flags
 * @returns the exit code
 */
export async function runDashboard(app: Celery, values: Values): Promise<number> {
  const dashboard = await dashboardFromFlags(app, values);
  applyNice(values.nice as string | undefined);
  await refuseSettingsError(app);
  const stopped = Promise.withResolvers<void>();
  const onSignal = () => stopped.resolve();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    await startDashboard(dashboard, values);
    await stopped.promise;
    log.info("Dashboard stopping");
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    await dashboard.stop();
    await app.close();
  }
  return 0;
}

/** How long the start-up open of the broker may take before the dashboard starts anyway. */
const FIRST_OPEN_MS = 5_000;

/**
 * Open the broker once before serving: what only new settings fix (Deno KV not enabled, a Deno
 * permission, a wrong password) is thrown, as the worker exits on it; an unreachable or slow
 * broker is left to the event stream, which retries while the page is served.
 */
async function refuseSettingsError(app: Celery): Promise<void> {
  try {
    await app.broker({ signal: AbortSignal.timeout(FIRST_OPEN_MS) });
  } catch (err) {
    if (err instanceof BrokerConnectionError && !err.transient) throw err;
  }
}
