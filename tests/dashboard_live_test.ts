/**
 * The dashboard watching real workers, in a real browser: `worker.ts
 * dashboard` (the command users run) on Redis, a Celeriac worker and a
 * Python Celery 5.2.6 worker both started with `-E`, Chromium driven by
 * playwright-core. Both workers are listed online with their language; a
 * task sent from Python appears and its state changes live (filtered by
 * name); a failing
 * Python task shows its traceback; revoke from the UI reaches the Celeriac
 * worker (task-revoked comes back); the Overview counts non-zero
 * throughput; the Queues page shows a queue's depth and a message the
 * Celeriac worker parked; a wrong password gets 401. Screenshots of every
 * page go to .scratch/screenshots/dashboard_live_test/.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { nav, screenshots, startDashboard, watchPythonTasks } from "./helpers/dashboard.ts";
import { celeriacWorker, celeryWorker, type Proc } from "./helpers/procs.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY } from "./helpers/services.ts";

const shot = screenshots("dashboard_live_test");
const prefix = uniquePrefix("dash-live");
const broker = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
const id = crypto.randomUUID().slice(0, 6);
const pyQueue = `dash-py-${id}`;
const tsQueue = `dash-ts-${id}`;
const idleQueue = `dash-idle-${id}`;
const pyNode = `dash-py-${id}@%h`;
const tsNode = `dash-ts-${id}@%h`;
const pyEnv = (queue: string) => ({
  CELERY_BROKER_URL: REDIS_URL,
  CELERY_RESULT_BACKEND: REDIS_URL,
  INTEROP_KEYPREFIX: prefix,
  INTEROP_QUEUE: queue,
});

Deno.test({
  name: "dashboard live: a Celeriac and a Python worker, watched from Chromium",
  ignore: WITHOUT_CELERY || WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const app = new Celery({ broker, backend: REDIS_URL });
    const procs: Proc[] = [];
    const ids: string[] = [];
    try {
      const py = await celeryWorker([
        "-P",
        "solo",
        "-Q",
        pyQueue,
        "-n",
        pyNode,
        "-E",
      ], pyEnv(pyQueue));
      procs.push(py);
      const ts = await celeriacWorker([
        "--app",
        "./tests/interop/tasks.ts",
        "--broker",
        broker,
        "--backend",
        REDIS_URL,
        "-Q",
        tsQueue,
        "-c",
        "1",
        "-n",
        tsNode,
        "-E",
      ]);
      procs.push(ts);
      const { proc: dash, url } = await startDashboard({ broker, backend: REDIS_URL }, [
        "-Q",
        idleQueue,
      ]);
      procs.push(dash);

      // A wrong password: the server's answer, without a second browser launch.
      const wrong = await fetch(url, { headers: { authorization: `Basic ${btoa("admin:x")}` } });
      await wrong.body?.cancel();
      assert.equal(wrong.status, 401);

      const browser = await launchChromium({
        httpCredentials: { username: "admin", password: "s3cret" },
      });
      try {
        const page = await browser.context.newPage();
        const errors: string[] = [];
        page.on("pageerror", (e) => errors.push(e.message));

        // Workers: both online (heartbeats), with their language
        await page.goto(`${url}/#/workers`);
        const pyRow = page.locator("tr[data-worker]", { hasText: `dash-py-${id}@` });
        const tsRow = page.locator("tr[data-worker]", { hasText: `dash-ts-${id}@` });
        await pyRow.getByText("online").waitFor({ timeout: 20_000 });
        await tsRow.getByText("online").waitFor({ timeout: 20_000 });
        assert.match(await pyRow.textContent() ?? "", /python/);
        assert.match(await tsRow.textContent() ?? "", /celeriac/);

        // Python tasks: live states (the slow one on the Celeriac worker), a traceback
        await watchPythonTasks(page, url, shot, {
          tsEnv: pyEnv(tsQueue),
          pyEnv: pyEnv(pyQueue),
          failMessage: "dash-boom",
          procs,
        });

        // Revoke from the UI reaches the Celeriac worker: it sends task-revoked
        const held = await app.sendTask("tasks.nap", [1], { queue: tsQueue, countdown: 600 });
        ids.push(held.id);
        await page.goto(`${url}/#/tasks/${held.id}`);
        await page.getByTestId("task-state").filter({ hasText: "RECEIVED" }).waitFor({
          timeout: 20_000,
        });
        await page.getByRole("button", { name: "Revoke" }).click();
        await page.getByTestId("task-state").filter({ hasText: "REVOKED" }).waitFor({
          timeout: 20_000,
        });
        await shot(page, "task-revoked");

        // Workers again, and one worker's page with its inspect replies
        await nav(page, "Workers");
        await pyRow.getByText("online").waitFor();
        // pool size and queues from inspect stats / active_queues: asked every 10 s, and again
        // within seconds of a worker that did not answer (busy, or a loaded machine)
        await tsRow.locator("td.num").nth(4).filter({ hasText: /^1$/ }).waitFor({
          timeout: 20_000,
        });
        await pyRow.locator("td.num").nth(4).filter({ hasText: /^1$/ }).waitFor({
          timeout: 20_000,
        });
        await tsRow.getByRole("cell", { name: tsQueue, exact: true }).waitFor();
        await pyRow.getByRole("cell", { name: pyQueue, exact: true }).waitFor();
        await shot(page, "workers");
        await tsRow.getByRole("link").click();
        await page.getByRole("heading", { name: "Registered tasks" }).waitFor({ timeout: 20_000 });
        await page.getByText("tasks.nap").first().waitFor({ timeout: 20_000 });
        await shot(page, "worker");

        // Actions wait for the worker's reply and show it (or its refusal)
        const status = page.getByRole("status");
        await page.getByLabel("Task name").fill("tasks.nap");
        await page.getByRole("button", { name: "Set rate limit" }).click();
        await status.filter({ hasText: "new rate limit set successfully" }).waitFor();
        await page.getByLabel("Task name").fill("no.such.task");
        await page.getByRole("button", { name: "Set rate limit" }).click();
        await page.getByRole("alert").filter({ hasText: "refused rate_limit: unknown task" })
          .waitFor();
        await page.getByLabel("Queue").fill(idleQueue);
        await page.getByRole("button", { name: "Add consumer" }).click();
        await status.filter({ hasText: `add consumer ${idleQueue}` }).waitFor();
        await page.getByRole("button", { name: "Cancel consumer" }).click();
        await status.filter({ hasText: `no longer consuming from ${idleQueue}` }).waitFor();

        // Queues: a waiting queue's depth, a message the Celeriac worker parked
        for (let i = 0; i < 3; i++) await app.sendTask("tasks.add", [i, i], { queue: idleQueue });
        const unknown = await app.sendTask(`no.such.task.${id}`, [], { queue: tsQueue });
        ids.push(unknown.id);
        await nav(page, "Queues");
        await page.locator(`tr[data-queue="${idleQueue}"] td.num`).filter({ hasText: "3" }).waitFor(
          {
            timeout: 20_000,
          },
        );
        await page.locator("tr[data-parked]", { hasText: `no.such.task.${id}` }).waitFor({
          timeout: 20_000,
        });
        await shot(page, "queues");

        // Overview: both workers online, non-zero throughput in the chart's data
        await nav(page, "Overview");
        await page.getByTestId("workers-online").waitFor();
        const finished = Number(await page.getByTestId("finished-5m").textContent());
        assert.ok(finished >= 3, `finished in the last 5 min: ${finished}`);
        assert.equal(await page.locator("figure.chart canvas").count(), 2);
        await page.waitForTimeout(1500);
        await shot(page, "overview");
        assert.deepEqual(errors, []);
      } finally {
        await browser.close();
      }
    } finally {
      for (const p of procs.reverse()) await p.stop();
      await app.purge(idleQueue).catch(() => 0);
      await app.close();
      await deleteResults(ids);
      await deleteKeys(prefix);
    }
  },
});
