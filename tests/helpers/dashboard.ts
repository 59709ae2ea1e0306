/**
 * Shared parts of the dashboard's browser tests: a free port, screenshots
 * under `.scratch/screenshots/<test>/`, the header's navigation, the
 * `worker.ts dashboard` command and a Python Celery client sending tasks.
 */

import type { Page } from "playwright-core";
import { Proc, PYTHON } from "./procs.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}

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
 * Start `worker.ts dashboard` on the interop app (tests/interop/tasks.ts)
 * with basic auth `admin:s3cret`; resolves once it listens.
 */
export async function startDashboard(
  urls: { broker: string; backend: string },
  extra: string[] = [],
): Promise<{ proc: Proc; url: string }> {
  const port = freePort();
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
  await proc.waitFor(/Dashboard on /);
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
