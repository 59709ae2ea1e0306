/**
 * A browser tab left open while the dashboard restarts (an upgrade, a
 * deploy): the live stream reconnects, the next action takes the new
 * process's CSRF token instead of failing until the page is reloaded, and
 * the open view loads anew, showing what the new process knows though no
 * live message carries it.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard } from "../dashboard.ts";
import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { nav, taskEvent } from "./helpers/dashboard.ts";

const dashboard = (app: Celery, port: number) =>
  new Dashboard({
    app,
    port,
    events: async function* () {},
    enableEvents: false,
    inspector: null,
    queues: ["rs_q"],
  });

Deno.test({
  name: "dashboard restarted under an open page: its actions still work",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
    let d = dashboard(app, 0);
    const { url } = await d.start();
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      await page.goto(url);
      await nav(page, "Queues");
      await page.locator('tr[data-queue="rs_q"]').waitFor();
      await d.stop();
      d = dashboard(app, Number(new URL(url).port));
      await d.start();
      await app.sendTask("rs.a", [], { queue: "rs_q" });
      await page.locator('tr[data-queue="rs_q"] td.num').filter({ hasText: "1" }).waitFor();
      await page.locator('tr[data-queue="rs_q"]').getByRole("button", { name: "Purge…" }).click();
      const dialog = page.getByRole("dialog");
      await dialog.getByLabel("Queue name").fill("rs_q");
      await dialog.getByRole("button", { name: "Purge" }).click();
      const status = page.getByRole("status");
      await status.filter({ hasText: /Purged|X-CSRF-Token/ }).waitFor();
      assert.equal(await status.textContent(), "Purged 1 message(s) from rs_q");
    } finally {
      await browser.close();
      await d.stop();
      await app.close();
    }
  },
});

Deno.test({
  name: "dashboard restarted under an open page: the Tasks view loads anew on reconnect",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
    const received = (id: string) =>
      taskEvent("task-received", id, { name: "rs.add", args: "(1, 2)", kwargs: "{}" });
    let d = dashboard(app, 0);
    d.model.apply(received("before-restart"));
    const { url } = await d.start();
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      await page.goto(`${url}/#/tasks`);
      await page.locator('tr[data-task="before-restart"]').waitFor();
      await page.getByText("● live").waitFor(); // the stream is open: what follows is a reconnect
      await d.stop();
      d = dashboard(app, Number(new URL(url).port));
      // Known to the new process before the page is back, and in no live message: only
      // loading the view anew on reconnect shows it.
      d.model.apply(received("after-restart"));
      d.model.takeChanges();
      await d.start();
      await page.locator('tr[data-task="after-restart"]').waitFor();
      assert.equal(await page.locator('tr[data-task="before-restart"]').count(), 0);
    } finally {
      await browser.close();
      await d.stop();
      await app.close();
    }
  },
});
