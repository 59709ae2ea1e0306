/**
 * The `dashboard` sub-command and `worker -D` (the dashboard inside a
 * worker process).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Celery } from "../client/app.ts";
import { Dashboard } from "../dashboard/server.ts";
import { CELERIAC_VERSION as VERSION } from "../client/version.ts";

const log = getLogger(["celeriac", "cli"]);

/** The command-line options of the dashboard, for `parseArgs`. */
export const DASHBOARD_OPTIONS = {
  dashboard: { type: "boolean", short: "D" },
  port: { type: "string" },
  address: { type: "string" },
  "basic-auth": { type: "string" },
  token: { type: "string" },
  "read-only": { type: "boolean" },
  "hide-args": { type: "boolean" },
  "max-tasks": { type: "string" },
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
      --read-only            hide every action (revoke, purge, shutdown, ...)
      --hide-args            mask task args, kwargs and results
      --max-tasks N          tasks kept in memory (default 10000)
  -Q, --queues a,b           dashboard: also show the depth of these queues`;

type Values = Record<string, string | boolean | undefined>;

function port(value: string | undefined): number {
  if (value === undefined) return 5555;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new TypeError(`--port needs a port number 0..65535, got "${value}"`);
  }
  return n;
}

/**
 * A dashboard configured from command-line flags (not started).
 *
 * @example
 * ```ts ignore
 * const dashboard = dashboardFromFlags(app, { port: "5555", "read-only": true });
 * await dashboard.start();
 * ```
 *
 * @param app the app
 * @param values parsed flags
 * @returns the dashboard
 * @throws {TypeError} for bad flags, or off loopback without auth
 */
export function dashboardFromFlags(app: Celery, values: Values): Dashboard {
  const pairs = (values["basic-auth"] as string | undefined) ??
    Deno.env.get("CELERIAC_DASHBOARD_BASIC_AUTH") ?? "";
  const basic = pairs.split(",").filter(Boolean);
  const token = (values.token as string | undefined) ?? Deno.env.get("CELERIAC_DASHBOARD_TOKEN");
  const maxTasks = values["max-tasks"] === undefined ? undefined : Number(values["max-tasks"]);
  if (maxTasks !== undefined && (!Number.isInteger(maxTasks) || maxTasks < 1)) {
    throw new TypeError(`--max-tasks needs a whole number >= 1, got "${values["max-tasks"]}"`);
  }
  return new Dashboard({
    app,
    hostname: (values.address as string | undefined) ?? "127.0.0.1",
    port: port(values.port as string | undefined),
    auth: { basic, ...(token !== undefined ? { token } : {}) },
    readOnly: values["read-only"] === true,
    hideArgs: values["hide-args"] === true,
    maxTasks,
    queues: (values.queues as string | undefined)?.split(",").map((q) => q.trim()).filter(Boolean),
    version: VERSION,
  });
}

/**
 * `worker.ts dashboard`: serve until SIGINT/SIGTERM; resolves with the exit code.
 *
 * @example
 * ```ts ignore
 * Deno.exitCode = await runDashboard(app, { port: "5555" });
 * ```
 *
 * @param app the app
 * @param values parsed flags
 * @returns the exit code
 */
export async function runDashboard(app: Celery, values: Values): Promise<number> {
  const dashboard = dashboardFromFlags(app, values);
  const stopped = Promise.withResolvers<void>();
  const onSignal = () => stopped.resolve();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    await dashboard.start();
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
