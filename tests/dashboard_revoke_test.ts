/**
 * Revoke and Terminate on a task's page (Debian's Chromium) say what the
 * workers replied — Celery's "tasks ID flagged as revoked" per node — or
 * that none answered, with a Celeriac worker on the dashboard's in-memory
 * broker. Screenshots go to .scratch/screenshots/dashboard_revoke_test/.
 */

import assert from "node:assert/strict";
import type { DashboardEvent } from "../dashboard.ts";
import { Worker } from "../worker.ts";
import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { memoryDashboard, screenshots } from "./helpers/dashboard.ts";

const shot = screenshots("dashboard_revoke_test");

/** Three waiting tasks, as a worker's task-received would announce them. */
async function* waiting(signal: AbortSignal): AsyncIterable<DashboardEvent> {
  for (const uuid of ["rv-1", "rv-2", "rv-3"]) {
    yield {
      type: "task-received",
      uuid,
      hostname: "revoker@test",
      timestamp: Date.now() / 1000,
      name: "tasks.slow",
      args: "(30,)",
      kwargs: "{}",
    };
  }
  await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
}

Deno.test({
  name: "dashboard UI: Revoke and Terminate show the workers' replies, or that none replied",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { app, dashboard, url } = await memoryDashboard(waiting);
    const worker = new Worker({ app, pool: "inline", hostname: "revoker@test" });
    const browser = await launchChromium();
    let stopped = false;
    try {
      await worker.start();
      const page = await browser.context.newPage();
      const toast = page.getByRole("status");
      await page.goto(`${url}/#/tasks/rv-1`);
      await page.getByRole("button", { name: "Revoke" }).click();
      await toast.filter({ hasText: "revoker@test: tasks rv-1 flagged as revoked" }).waitFor();
      assert.equal(
        await toast.textContent(),
        "Revoke sent for rv-1. revoker@test: tasks rv-1 flagged as revoked",
      );
      await shot(page, "revoke-replied");
      // terminate: the worker holds no such task running, and says so (as Celery does)
      await page.goto(`${url}/#/tasks/rv-2`);
      await page.getByRole("button", { name: "Terminate" }).click();
      await toast.filter({ hasText: "Terminate sent for rv-2" }).waitFor();
      assert.equal(
        await toast.textContent(),
        "Terminate sent for rv-2. revoker@test: terminate: tasks unknown",
      );
      // no worker: said so after the 2 s wait, not a bare "sent"
      await worker.stop();
      stopped = true;
      await page.goto(`${url}/#/tasks/rv-3`);
      await page.getByRole("button", { name: "Revoke" }).click();
      await toast.filter({ hasText: "Revoke sent for rv-3" }).waitFor();
      assert.equal(
        await toast.textContent(),
        "Revoke sent for rv-3; no worker replied within 2 s",
      );
      await shot(page, "revoke-unanswered");
    } finally {
      await browser.close();
      if (!stopped) await worker.stop();
      await dashboard.stop();
      await app.close();
    }
  },
});
