/**
 * The dashboard's keyboard use in a real browser (Debian's Chromium via
 * playwright-core), on the replayed events of a real Celery 5.2.6 worker
 * plus 80 tasks the test adds: the Tasks page's State filter and pager keep
 * the focus (and two quick clicks on Older go two pages on), a new page's
 * main area takes the focus without drawing a focus ring after a click,
 * Back or Enter on a page link, while a Tab still rings a control. A
 * focused Revoke that the task's revocation disables hands the focus to the
 * task's state, not to the page's start.
 */

import assert from "node:assert/strict";
import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { nav, replayDashboard, taskEvent, withBrowserDashboard } from "./helpers/dashboard.ts";

Deno.test({
  name:
    "dashboard UI: the Tasks filters and pager keep the keyboard's focus; a new page takes it, with no ring",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { app, events, dashboard, url } = await replayDashboard();
    const browser = await launchChromium();
    const focused = () =>
      page.evaluate<string>(
        "(e => e.id || e.getAttribute('name') || e.textContent)(document.activeElement)",
      );
    let page!: Awaited<ReturnType<typeof browser.context.newPage>>;
    try {
      page = await browser.context.newPage();
      for (let i = 0; i < 80; i++) {
        events.push(taskEvent("task-received", `kb-${i}`, { name: "capapp.kb", args: "()" }));
      }
      await page.goto(`${url}/#/tasks`);
      await page.locator("tr[data-task]", { hasText: "capapp.kb" }).first().waitFor();
      // the State select moved with an arrow key applies its filter and keeps the focus,
      // so the next arrow chooses the next state
      await page.getByLabel("State").focus();
      await page.keyboard.press("ArrowDown");
      await page.waitForURL(/state=PENDING/);
      assert.equal(await focused(), "state");
      await page.keyboard.press("ArrowDown");
      await page.waitForURL(/state=RECEIVED/);
      // the pager's Older, pressed with Enter, stays focused for the next page
      await page.goto(`${url}/#/tasks?name=capapp.kb`);
      // all 80 received: with fewer, Older is disabled at offset 25 (and loses the focus)
      await page.locator("nav.pager", { hasText: "of 80" }).waitFor();
      await page.getByRole("button", { name: "Older" }).focus();
      await page.keyboard.press("Enter");
      await page.waitForURL(/offset=25/);
      assert.equal(await focused(), "Older");
      await page.keyboard.press("Enter");
      await page.waitForURL(/offset=50/);
      // two clicks before the table re-renders go two pages on, not to the same page twice
      await page.goto(`${url}/#/tasks?name=capapp.kb`);
      await page.locator("nav.pager", { hasText: "1–25 of 80" }).waitFor();
      await page.evaluate(
        "(b => { b.click(); b.click(); })([...document.querySelectorAll('nav.pager button')]" +
          ".find((b) => b.textContent === 'Older'))",
      );
      await page.waitForURL(/offset=50/);
      // another page of the dashboard: its content takes the focus
      await nav(page, "Workers");
      await page.waitForURL(/#\/workers/);
      // the URL changes before its hashchange event moves the focus
      await page.locator("#main:focus").waitFor({ timeout: 5_000 });
      // a focus moved by the script paints no ring across the page; a Tab to a control does
      const outline = () =>
        page.evaluate<string>("getComputedStyle(document.activeElement).outlineStyle");
      assert.equal(await outline(), "none", "the main area's outline after a click");
      // nor after the browser's Back, nor after Enter on a page link
      await page.goBack();
      await page.waitForURL(/#\/tasks/);
      await page.locator("#main:focus").waitFor();
      assert.equal(await outline(), "none", "the main area's outline after Back");
      await page.getByRole("navigation", { name: "Pages" }).getByRole("link", { name: "Queues" })
        .press("Enter");
      await page.waitForURL(/#\/queues/);
      await page.locator("#main:focus").waitFor();
      assert.equal(await outline(), "none", "the main area's outline after Enter on a link");
      await page.keyboard.press("Tab");
      assert.equal(await outline(), "solid", `no ring on ${await focused()} after a Tab`);
    } finally {
      await browser.close();
      await dashboard.stop();
      await app.close();
    }
  },
});

Deno.test({
  name: "dashboard UI: Revoke pressed with Enter and then disabled hands the focus to the state",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withBrowserDashboard(async function* () {}, {}, async ({ dashboard: d, url, page }) => {
      d.model.apply(taskEvent("task-received", "kb-1", { name: "kb.slow", args: "(1,)" }));
      d.model.apply(taskEvent("task-started", "kb-1"));
      const focused = () =>
        page.evaluate<string>(
          "(e => e.tagName + ':' + (e.textContent || '').trim())(document.activeElement)",
        );
      await page.goto(`${url}/#/tasks/kb-1`);
      await page.getByTestId("task-state").filter({ hasText: "STARTED" }).waitFor();
      for (let i = 0; i < 30 && await focused() !== "BUTTON:Revoke"; i++) {
        await page.keyboard.press("Tab");
      }
      assert.equal(await focused(), "BUTTON:Revoke");
      await page.keyboard.press("Enter");
      await page.getByRole("status").filter({ hasText: /revoke/i }).waitFor();
      // it ran (disabled meanwhile) and is back: the focus with it
      await page.locator("button:focus", { hasText: "Revoke" }).waitFor();
      d.model.apply(taskEvent("task-revoked", "kb-1", { terminated: false, expired: false }));
      await page.getByTestId("task-state").filter({ hasText: "REVOKED" }).waitFor();
      assert.equal(await page.getByRole("button", { name: "Revoke" }).isDisabled(), true);
      await page.locator("[data-testid=task-state]:focus").waitFor();
      await page.keyboard.press("Tab");
      assert.match(await focused(), /^(SELECT|A):/, "the next Tab goes on from the state");
    });
  },
});
