/**
 * `--hide-args` in the browser: a link carrying a text filter (`?text=`,
 * made before args were hidden, or by hand) shows the tasks the other
 * filters pick, not the server's refusal of text search, and the filters
 * applied from there leave the text out of the address.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard } from "../dashboard.ts";
import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { taskEvent } from "./helpers/dashboard.ts";

Deno.test({
  name: "dashboard --hide-args: a link with ?text= shows the tasks and filters without it",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
    const d = new Dashboard({
      app,
      port: 0,
      events: async function* () {},
      enableEvents: false,
      inspector: null,
      hideArgs: true,
    });
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
    const { url } = await d.start();
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
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
    } finally {
      await browser.close();
      await d.stop();
      await app.close();
    }
  },
});
