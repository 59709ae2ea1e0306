/**
 * The Tasks page's live refresh in a real browser (Chromium via
 * playwright-core) when things overlap, each overlap made to happen by
 * holding a `GET /api/tasks` answer (its body read from the server, then
 * handed to the page on the test's word): a live change that arrives while
 * a fetch is in flight still reaches the table, also after more messages
 * than the page keeps during one fetch; a filter applied while a fetch is
 * in flight shows the filtered tasks; text typed in a filter field
 * survives a refresh of the table. Events come from a source the test
 * feeds; no worker runs.
 */

import assert from "node:assert/strict";
import type { Page, Route } from "playwright-core";
import type { DashboardEvent } from "../dashboard.ts";
import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { memoryDashboard } from "./helpers/dashboard.ts";

/** An event source yielding what the test pushes, until aborted. */
function pushed() {
  const pending: DashboardEvent[] = [];
  let wake = () => {};
  const push = (e: DashboardEvent) => {
    pending.push(e);
    wake();
  };
  const source = async function* (signal: AbortSignal): AsyncIterable<DashboardEvent> {
    while (!signal.aborted) {
      while (pending.length) yield pending.shift()!;
      await new Promise<void>((r) => {
        wake = r;
        signal.addEventListener("abort", () => r(), { once: true });
      });
    }
  };
  return { source, push };
}

const task = (type: string, uuid: string, extra: Record<string, unknown> = {}): DashboardEvent => ({
  type,
  uuid,
  hostname: "celery@refresh-host",
  timestamp: Date.now() / 1000,
  ...extra,
});

/**
 * Hold the next `GET /api/tasks` answer: the server answers at once (so the
 * body is the state before whatever the test does next), the page gets it
 * when `release()` is called. `answered` resolves once the server answered.
 */
async function holdNextTasksAnswer(page: Page) {
  const answered = Promise.withResolvers<void>();
  const released = Promise.withResolvers<void>();
  const handed = Promise.withResolvers<void>();
  const pattern = "**/api/tasks?*";
  let held = false;
  const handler = async (route: Route) => {
    if (held) return route.continue();
    held = true;
    const response = await route.fetch();
    answered.resolve();
    await released.promise;
    await route.fulfill({ response });
    handed.resolve();
  };
  await page.route(pattern, handler);
  return {
    answered: answered.promise,
    async release() {
      released.resolve();
      await handed.promise;
      await page.unroute(pattern, handler);
    },
  };
}

/**
 * Record every task change the page's live stream delivers, through a listener of the page's
 * own; `delivered(uuid, state)` resolves once such a change has arrived, `messages(n)` once
 * `n` more messages have.
 */
async function liveChanges(page: Page) {
  const seen: { uuid: string; state: string }[] = [];
  let count = 0;
  const waiters = new Set<() => void>();
  await page.exposeFunction("__celeriacChanges", (tasks: { uuid: string; state: string }[]) => {
    seen.push(...tasks);
    count++;
    for (const w of waiters) w();
  });
  // a string: the test's type checking knows no DOM
  await page.addInitScript({
    content: `import("/static/js/lib.js").then((lib) =>
      lib.onLive((msg) => __celeriacChanges(msg.tasks.map(({ uuid, state }) => ({ uuid, state })))));`,
  });
  const until = async (done: () => boolean) => {
    while (!done()) {
      const { promise, resolve } = Promise.withResolvers<void>();
      waiters.add(resolve);
      await promise;
      waiters.delete(resolve);
    }
  };
  return {
    delivered: (uuid: string, state: string) =>
      until(() => seen.some((t) => t.uuid === uuid && t.state === state)),
    messages(n: number): Promise<void> {
      const end = count + n;
      return until(() => count >= end);
    },
  };
}

Deno.test({
  name: "dashboard refresh: changes and filters that overlap a fetch in flight reach the table",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const events = pushed();
    const { app, dashboard, url } = await memoryDashboard(events.source);
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      const live = await liveChanges(page);
      const row = (uuid: string) => page.locator(`tr[data-task="${uuid}"]`);
      const name = page.getByLabel("Name", { exact: true });

      events.push(task("task-received", "held-1", { name: "demo.held", args: "()" }));
      await page.goto(`${url}/#/tasks`);
      await row("held-1").locator(".badge", { hasText: "RECEIVED" }).waitFor();

      // A change delivered while the table's fetch is in flight: the table shows it
      // once that fetch ends, with no later change to prompt it
      let hold = await holdNextTasksAnswer(page);
      events.push(task("task-received", "other-1", { name: "demo.other", args: "()" }));
      await hold.answered;
      events.push(task("task-started", "held-1"));
      await live.delivered("held-1", "STARTED");
      await hold.release();
      await row("other-1").waitFor();
      await row("held-1").locator(".badge", { hasText: "STARTED" }).waitFor({ timeout: 10_000 });

      // Text typed in a filter field stays there when the table refreshes under it
      await name.fill("demo.held");
      events.push(task("task-received", "other-2", { name: "demo.other", args: "()" }));
      await row("other-2").waitFor();
      assert.equal(await name.inputValue(), "demo.held");

      // A filter applied while the table's fetch is in flight: the filtered tasks show
      hold = await holdNextTasksAnswer(page);
      events.push(task("task-received", "other-3", { name: "demo.other", args: "()" }));
      await hold.answered;
      await page.getByRole("button", { name: "Filter" }).click();
      await page.waitForURL(/name=demo\.held/);
      await hold.release();
      await page.getByRole("table").locator("caption", { hasText: /^1 task\(s\)/ }).waitFor({
        timeout: 10_000,
      });
      assert.deepEqual(
        await page.locator("tr[data-task]").evaluateAll((rows) =>
          rows.map((r) => r.getAttribute("data-task"))
        ),
        ["held-1"],
      );

      // A change that comes after more live messages than the page keeps during one fetch
      // (8) still reaches the table
      hold = await holdNextTasksAnswer(page);
      events.push(task("task-retried", "held-1", { exception: "Exception('again')" }));
      await hold.answered;
      await live.messages(9);
      events.push(task("task-succeeded", "held-1", { result: "1" }));
      await live.delivered("held-1", "SUCCESS");
      await hold.release();
      await row("held-1").locator(".badge", { hasText: "SUCCESS" }).waitFor({ timeout: 10_000 });
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await dashboard.stop();
      await app.close();
    }
  },
});
