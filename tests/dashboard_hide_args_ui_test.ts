/**
 * `--hide-args` in the browser: a link carrying a text filter (`?text=`,
 * made before args were hidden, or by hand) shows the tasks the other
 * filters pick, not the server's refusal of text search, and the filters
 * applied from there leave the text out of the address.
 */

import assert from "node:assert/strict";
import { WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { taskEvent, withBrowserDashboard } from "./helpers/dashboard.ts";

Deno.test({
  name: "dashboard --hide-args: a link with ?text= shows the tasks and filters without it",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withBrowserDashboard(
      async function* () {},
      { dashboard: { hideArgs: true } },
      async ({ dashboard: d, url, page }) => {
        d.model.apply(
          taskEvent("task-received", "card-1", {
            name: "tasks.charge",
            args: "('4111 1111 1111 1111',)",
            kwargs: "{}",
          }),
        );
        d.model.apply(taskEvent("task-succeeded", "card-1", { result: "'ok'", runtime: 0.1 }));
        d.model.apply(
          taskEvent("task-received", "card-2", { name: "tasks.refund", args: "()", kwargs: "{}" }),
        );
        await page.goto(`${url}/#/tasks?text=4111`);
        await page.locator('tr[data-task="card-2"]').waitFor();
        assert.equal(await page.locator(".error-box").count(), 0);
        await page.getByLabel("State").selectOption("SUCCESS");
        await page.waitForURL(/#\/tasks\?state=SUCCESS$/);
        await page.locator('tr[data-task="card-2"]').waitFor({ state: "detached" });
        assert.equal(await page.locator("tbody tr").count(), 1);
        assert.equal(await page.locator('tr[data-task="card-1"]').count(), 1);
        await page.getByRole("button", { name: "Filter" }).click();
        await page.waitForURL(/#\/tasks\?state=SUCCESS$/);
        assert.equal(await page.locator(".error-box").count(), 0);
      },
    );
  },
});
