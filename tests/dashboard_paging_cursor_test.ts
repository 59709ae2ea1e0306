/**
 * The Tasks pages are anchored on a cursor (the newest task when the pages
 * were opened), as bull-board's and Flower's: tasks that arrive while page 2
 * is shown shift none of page 1's rows onto it, and a status line counts
 * them with a way back to the newest. Before, page 2 showed rows that had
 * moved down from page 1 with each new task.
 */

import assert from "node:assert/strict";
import { TaskTable } from "../src/dashboard/task_table.ts";
import { WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { taskEvent, withBrowserDashboard } from "./helpers/dashboard.ts";

/** `n` received tasks `${prefix}-0` … (the last the newest), a millisecond apart. */
function received(prefix: string, n: number, from: number) {
  return Array.from({ length: n }, (_, i) =>
    taskEvent("task-received", `${prefix}-${i}`, {
      name: "page.t",
      timestamp: from + i / 1000,
    }));
}

const ids = (q: { tasks: { uuid: string }[] }) => q.tasks.map((t) => t.uuid);

Deno.test("dashboard paging: a cursor keeps page 2's rows while tasks arrive", () => {
  const table = new TaskTable({ maxTasks: 1000 });
  const now = Date.now() / 1000;
  for (const e of received("old", 60, now)) table.apply(e);
  const first = table.query({ limit: 25 });
  const second = table.query({ offset: 25, limit: 25 });
  assert.equal(first.newer, 0);
  for (const e of received("new", 10, now + 1)) table.apply(e);
  // An update of a task on page 2 neither moves nor drops it.
  table.apply(taskEvent("task-started", "old-30", { timestamp: now + 2 }));
  const later = table.query({ offset: 25, limit: 25, cursor: first.cursor });
  assert.deepEqual(ids(later), ids(second));
  assert.equal(later.total, 60);
  assert.equal(later.newer, 10);
  assert.equal(later.cursor, first.cursor);
  // Without a cursor: the newest, and a cursor past them.
  const live = table.query({ limit: 25 });
  assert.equal(live.tasks[0].uuid, "new-9");
  assert.equal(live.newer, 0);
  assert.ok(live.cursor > first.cursor);
});

Deno.test({
  name: "dashboard paging UI: Older anchors the pages; new tasks are counted, not shifted in",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withBrowserDashboard(async function* () {}, {}, async ({ dashboard: d, url, page }) => {
      const now = Date.now() / 1000;
      for (const e of received("old", 60, now)) d.model.apply(e);
      await page.goto(`${url}/#/tasks`);
      await page.locator("nav.pager", { hasText: "1–25 of 60" }).waitFor();
      await page.getByRole("button", { name: "Older" }).click();
      await page.waitForURL(/offset=25/);
      assert.match(page.url(), /cursor=\d+/);
      const rows = page.locator("tr[data-task]");
      await page.locator('tr[data-task="old-34"]').waitFor();
      const shown = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-task")));
      // 60 tasks, newest first: page 2 is old-34 … old-10.
      assert.deepEqual(shown, Array.from({ length: 25 }, (_, i) => `old-${34 - i}`));

      for (const e of received("new", 10, now + 1)) d.model.apply(e);
      const status = page.getByRole("status").filter({ hasText: "10 newer task(s)" });
      await status.waitFor();
      const after = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-task")));
      assert.deepEqual(after, shown, "page 2 keeps its rows");
      assert.match(await page.locator("nav.pager").textContent() ?? "", /26–50 of 60/);

      await status.getByRole("button", { name: "Show newest" }).click();
      await page.locator('tr[data-task="new-9"]').waitFor();
      assert.doesNotMatch(page.url(), /offset|cursor/);
      await page.locator("nav.pager", { hasText: "1–25 of 70" }).waitFor();
    });
  },
});
