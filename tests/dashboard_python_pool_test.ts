/**
 * The dashboard watching only a Python Celery 5.2.6 prefork worker (no
 * Celeriac worker), in Chromium: Grow pool and Shrink pool on the worker's
 * page reach it, and its Pool size follows (the prefork pool's
 * `max-concurrency` does not move; the processes its stats list do), down
 * to a pool of none.
 * Screenshots go to .scratch/screenshots/dashboard_python_pool_test/.
 */

import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { nav, screenshots, startDashboard } from "./helpers/dashboard.ts";
import { celeryWorker, type Proc } from "./helpers/procs.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

const shot = screenshots("dashboard_python_pool_test");
const prefix = uniquePrefix("dash-pool");
const id = crypto.randomUUID().slice(0, 6);
const queue = `dash-pool-${id}`;

Deno.test({
  name: "dashboard: Grow and Shrink pool on a Python prefork worker, and its pool size follows",
  ignore: WITHOUT_CELERY || WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const procs: Proc[] = [];
    try {
      // Chromium starts while the worker and then the dashboard do (after the worker: the
      // dashboard's first inspect round, at its start, finds it).
      const servers = (async () => {
        procs.push(
          await celeryWorker(["-c", "1", "-Q", queue, "-n", `${queue}@%h`, "-E"], {
            CELERY_BROKER_URL: REDIS_URL,
            CELERY_RESULT_BACKEND: REDIS_URL,
            INTEROP_KEYPREFIX: prefix,
            INTEROP_QUEUE: queue,
          }),
        );
        const broker = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
        const { proc, url } = await startDashboard({ broker, backend: REDIS_URL });
        procs.push(proc);
        return url;
      })();
      const [started, chromium] = await Promise.allSettled([
        servers,
        launchChromium({ httpCredentials: { username: "admin", password: "s3cret" } }),
      ]);
      if (chromium.status === "rejected") throw chromium.reason;
      const browser = chromium.value;
      try {
        if (started.status === "rejected") throw started.reason;
        const url = started.value;
        const page = await browser.context.newPage();
        // The states are waited for generously: inspect replies come every 10 s, later on a
        // loaded host, and a prefork pool starts its new process after its reply.
        const wait = { timeout: 30_000 };
        await page.goto(`${url}/#/workers`);
        const row = page.locator("tr[data-worker]", { hasText: `${queue}@` });
        await row.locator("td.num").nth(4).filter({ hasText: /^1$/ }).waitFor(wait);
        await row.getByRole("link").click();
        const size = page.locator("dt", { hasText: "Pool size" }).locator("+ dd");
        await size.filter({ hasText: /^1$/ }).waitFor(wait);
        const status = page.getByRole("status");
        await page.getByLabel("Processes").fill("2");
        await page.getByRole("button", { name: "Grow pool" }).click();
        await status.filter({ hasText: "pool will grow" }).waitFor(wait);
        await size.filter({ hasText: /^3$/ }).waitFor(wait);
        await shot(page, "grown");
        await page.getByLabel("Processes").fill("1");
        await page.getByRole("button", { name: "Shrink pool" }).click();
        await status.filter({ hasText: "pool will shrink" }).waitFor(wait);
        await size.filter({ hasText: /^2$/ }).waitFor(wait);
        await nav(page, "Workers");
        await row.locator("td.num").nth(4).filter({ hasText: /^2$/ }).waitFor(wait);
        await shot(page, "workers");
        // shrunk to no process, its stats list none: 0, said plainly (was its max-concurrency, 1)
        await row.getByRole("link").click();
        await page.getByLabel("Processes").fill("2");
        await page.getByRole("button", { name: "Shrink pool" }).click();
        await status.filter({ hasText: "pool will shrink" }).waitFor(wait);
        await size.filter({ hasText: /^0: no processes, tasks wait until the pool grows$/ })
          .waitFor(wait);
        await nav(page, "Workers");
        await row.locator("td.num").nth(4).filter({ hasText: /^0 \(none\)$/ }).waitFor(wait);
      } finally {
        await browser.close();
      }
    } finally {
      for (const p of procs.reverse()) await p.stop();
      await deleteKeys(prefix);
    }
  },
});
