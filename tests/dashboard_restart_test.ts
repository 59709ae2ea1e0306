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

/** A task-received event of `rs.add` with the id `id`. */
const received = (id: string) =>
  taskEvent("task-received", id, { name: "rs.add", args: "(1, 2)", kwargs: "{}" });

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

Deno.test({
  name: "dashboard restarted behind a proxy that answers 502 meanwhile: the stream comes back",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // A non-200 answer closes an EventSource for good (WHATWG, unlike a refused connection,
    // which the browser retries): the page must open a new one itself.
    const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
    let d = dashboard(app, 0);
    const { url } = await d.start();
    const port = Number(new URL(url).port);
    let up = true;
    let refused = 0;
    const proxy = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
      const u = new URL(req.url);
      const down = () => {
        if (u.pathname.endsWith("/api/stream")) refused++;
        return new Response("<h1>502 Bad Gateway</h1>", {
          status: 502,
          headers: { "content-type": "text/html" },
        });
      };
      if (!up) return down();
      try {
        const r = await fetch(`http://127.0.0.1:${port}${u.pathname}${u.search}`, {
          method: req.method,
          headers: req.headers,
          body: req.body,
          signal: req.signal,
        });
        return new Response(r.body, { status: r.status, headers: r.headers });
      } catch {
        return down();
      }
    });
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      await page.goto(`http://127.0.0.1:${proxy.addr.port}/#/tasks`);
      await page.getByText("● live").waitFor();
      up = false;
      await d.stop();
      await page.getByText("○ connecting…").waitFor();
      // the browser asks again for the dropped stream (its own retry) and the proxy answers 502
      while (refused === 0) await new Promise((r) => setTimeout(r, 100));
      d = dashboard(app, port);
      d.model.apply(received("after-restart"));
      d.model.takeChanges();
      await d.start();
      up = true;
      await page.locator('tr[data-task="after-restart"]').waitFor();
      await page.getByText("● live").waitFor();
      d.model.apply(received("live-after"));
      await page.locator('tr[data-task="live-after"]').waitFor();
    } finally {
      await browser.close();
      await proxy.shutdown();
      await d.stop();
      await app.close();
    }
  },
});
