/**
 * Shared parts of the dashboard's browser tests: screenshots
 * under `.scratch/screenshots/<test>/`, the header's navigation, the
 * `worker.ts dashboard` command, a dashboard in the test's process on
 * events the test feeds (or on a real Celery 5.2.6 worker's capture
 * replayed), and a Python Celery client sending tasks.
 */

import assert from "node:assert/strict";
import type { BrowserContext, Page } from "playwright-core";
import { Celery } from "../../mod.ts";
import { Dashboard, type DashboardEvent, type DashboardOptions } from "../../dashboard.ts";
import { launchChromium } from "./browser.ts";
import { reservePorts } from "./ports.ts";
import { Proc, PYTHON } from "./procs.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** A function writing full-page screenshots to `.scratch/screenshots/<folder>/<name>.png`. */
export function screenshots(folder: string): (page: Page, name: string) => Promise<void> {
  const dir = new URL(`.scratch/screenshots/${folder}/`, `file://${ROOT}`);
  return async (page, name) => {
    await Deno.mkdir(dir, { recursive: true });
    await page.screenshot({ path: new URL(`${name}.png`, dir).pathname, fullPage: true });
  };
}

/** Click a page in the header's navigation. */
export const nav = (page: Page, name: string): Promise<void> =>
  page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name, exact: true }).click();

/**
 * A dashboard in this process on an app with the in-memory KV broker and
 * backend, fed only by `source` (no events from the broker, no inspector:
 * no worker is there to answer), started on a free port with `auth` (none
 * by default) and `more` of the dashboard's options (e.g. `hideArgs`).
 */
export async function memoryDashboard(
  source: (signal: AbortSignal) => AsyncIterable<DashboardEvent>,
  auth?: DashboardOptions["auth"],
  more: Partial<DashboardOptions> = {},
): Promise<{ app: Celery; dashboard: Dashboard; url: string }> {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const dashboard = new Dashboard({
    app,
    port: 0,
    events: source,
    auth,
    enableEvents: false,
    inspector: null,
    ...more,
  });
  const { url } = await dashboard.start();
  return { app, dashboard, url };
}

/** The events a real Celery 5.2.6 worker sent, read on first use. */
let fixture: { events: DashboardEvent[] } | undefined;

/**
 * Replays the capture of a real Celery 5.2.6 worker
 * (tests/fixtures/dashboard/events_all.json, its worker-offline left out)
 * shifted to now, then yields what the test pushes and a heartbeat a
 * second of its worker, `celery@fixture-host`.
 */
export function replay(): {
  source: (signal: AbortSignal) => AsyncIterable<DashboardEvent>;
  push: (e: DashboardEvent) => void;
} {
  fixture ??= JSON.parse(
    Deno.readTextFileSync(`${ROOT}tests/fixtures/dashboard/events_all.json`),
  ) as { events: DashboardEvent[] };
  const { events } = fixture;
  const pending: DashboardEvent[] = [];
  let wake = () => {};
  const push = (e: DashboardEvent) => {
    pending.push(e);
    wake();
  };
  const shift = Date.now() / 1000 - events.at(-1)!.timestamp - 1;
  const source = async function* (signal: AbortSignal): AsyncIterable<DashboardEvent> {
    for (const e of events) {
      if (e.type !== "worker-offline") yield { ...e, timestamp: e.timestamp + shift };
    }
    const beat = setInterval(() =>
      push({
        type: "worker-heartbeat",
        hostname: "celery@fixture-host",
        timestamp: Date.now() / 1000,
        freq: 2,
        active: 0,
        processed: 34,
        loadavg: [0.1, 0.2, 0.3],
        sw_ident: "py-celery",
        sw_ver: "5.2.6",
        sw_sys: "Linux",
      }), 1000);
    try {
      while (!signal.aborted) {
        while (pending.length) yield pending.shift()!;
        await new Promise<void>((r) => {
          wake = r;
          signal.addEventListener("abort", () => r(), { once: true });
        });
      }
    } finally {
      clearInterval(beat);
    }
  };
  return { source, push };
}

/** A {@linkcode memoryDashboard} fed by {@linkcode replay}, with `auth` (none by default). */
export async function replayDashboard(auth?: DashboardOptions["auth"]): Promise<
  { app: Celery; dashboard: Dashboard; url: string; events: ReturnType<typeof replay> }
> {
  const events = replay();
  return { ...await memoryDashboard(events.source, auth), events };
}

/** A task event of `type` from the replayed worker, `celery@fixture-host`, stamped now. */
export const taskEvent = (
  type: string,
  uuid: string,
  extra: Record<string, unknown> = {},
): DashboardEvent => ({
  type,
  uuid,
  hostname: "celery@fixture-host",
  timestamp: Date.now() / 1000,
  ...extra,
});

/**
 * Run `fn` with a {@linkcode memoryDashboard} fed by `source` (with
 * `options.dashboard` of its options) and a page of a fresh Chromium at
 * `viewport` (1280x800 by default); closes the browser, stops the dashboard
 * and closes the app afterwards, whatever `fn` did.
 */
export async function withBrowserDashboard(
  source: (signal: AbortSignal) => AsyncIterable<DashboardEvent>,
  options: {
    viewport?: { width: number; height: number };
    dashboard?: Partial<DashboardOptions>;
  },
  fn: (
    t: { app: Celery; dashboard: Dashboard; url: string; page: Page; browser: BrowserContext },
  ) => Promise<void>,
): Promise<void> {
  const { app, dashboard, url } = await memoryDashboard(source, undefined, options.dashboard);
  try {
    const browser = await launchChromium({ viewport: options.viewport });
    try {
      const page = await browser.context.newPage();
      await fn({ app, dashboard, url, page, browser: browser.context });
    } finally {
      await browser.close();
    }
  } finally {
    await dashboard.stop();
    await app.close();
  }
}

/**
 * Start `worker.ts dashboard` on the interop app (tests/interop/tasks.ts)
 * with basic auth `admin:s3cret`; resolves once it listens.
 */
export async function startDashboard(
  urls: { broker: string; backend: string },
  extra: string[] = [],
): Promise<{ proc: Proc; url: string }> {
  // A reserved block's port, held until the dashboard listens on it.
  using ports = reservePorts();
  const port = ports.base;
  const proc = Proc.start("dashboard", Deno.execPath(), [
    "run",
    "-A",
    "worker.ts",
    "dashboard",
    "--app",
    "./tests/interop/tasks.ts",
    "--broker",
    urls.broker,
    "--backend",
    urls.backend,
    "--port",
    String(port),
    "--basic-auth",
    "admin:s3cret",
    ...extra,
  ]);
  try {
    await proc.waitFor(/Dashboard on /);
  } catch (err) {
    // It never listened (or exited): not left running for the caller, which has no handle.
    await proc.stop();
    throw err;
  }
  return { proc, url: `http://127.0.0.1:${port}` };
}

/**
 * Send tasks from a Python Celery client (tests/interop/pyclient.py; `env`
 * gives broker, backend, queue); it waits for their results, the test
 * need not.
 */
export function pythonSend(env: Record<string, string>, calls: unknown[]): Proc {
  return Proc.start("pyclient", PYTHON, ["pyclient.py", JSON.stringify(calls)], {
    env: { INTEROP_TIMEOUT: "60", ...env },
    cwd: `${ROOT}tests/interop`,
  });
}

/**
 * Send Python tasks and watch them in the dashboard: `tasks.hold` on the
 * Celeriac worker's queue shows STARTED, and stays so until this function
 * lets it finish, then shows SUCCESS, live, in the Tasks table filtered by
 * its name (a Python solo worker sends its task events only once a task is
 * over); `py.mul` appears, and `py.fail(failMessage)` on the Python
 * worker's queue shows its traceback. Screenshots `tasks` and
 * `task-failed`; both Python clients must exit 0. Their processes are
 * pushed on `procs` for the test's cleanup.
 */
export async function watchPythonTasks(
  page: Page,
  url: string,
  shot: (page: Page, name: string) => Promise<void>,
  options: {
    tsEnv: Record<string, string>;
    pyEnv: Record<string, string>;
    failMessage: string;
    procs: Proc[];
  },
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-hold-" });
  const gate = `${dir}/release`;
  try {
    const held = pythonSend(options.tsEnv, [{ task: "tasks.hold", args: [gate] }]);
    const quick = pythonSend(options.pyEnv, [
      { task: "py.fail", args: [options.failMessage] },
      { task: "py.mul", args: [6, 7] },
    ]);
    options.procs.push(held, quick);
    await nav(page, "Tasks");
    await page.getByLabel("Name", { exact: true }).fill("tasks.hold");
    await page.getByRole("button", { name: "Filter" }).click();
    const row = page.locator("tr[data-task]", { hasText: "tasks.hold" }).first();
    await row.locator(".badge", { hasText: "STARTED" }).waitFor({ timeout: 20_000 });
    await Deno.writeTextFile(gate, "released");
    await row.locator(".badge", { hasText: "SUCCESS" }).waitFor({ timeout: 20_000 });
    // the filter holds: the one tasks.hold, not the Python worker's tasks
    await page.getByRole("table").locator("caption", { hasText: /^1 task\(s\)/ }).waitFor();
    await page.goto(`${url}/#/tasks`);
    await page.locator("tr[data-task]", { hasText: "py.mul" }).first().waitFor();
    await shot(page, "tasks");
    await page.locator("tr[data-task]", { hasText: "py.fail" }).first().getByRole("link").click();
    await page.getByTestId("traceback").filter({ hasText: `ValueError: ${options.failMessage}` })
      .waitFor();
    await shot(page, "task-failed");
    assert.equal((await held.child.status).code, 0, held.output);
    assert.match(held.output, /"ok": "released"/);
    assert.equal((await quick.child.status).code, 0, quick.output);
  } finally {
    // a test that failed before the release must not leave the task running
    await Deno.writeTextFile(gate, "released");
    await Deno.remove(dir, { recursive: true });
  }
}
