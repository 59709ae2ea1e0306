/**
 * A workflow's steps on a task's page: a 30-step chain (each step one level
 * below the last) fits a phone's width (375x667) with no sideways scroll,
 * each step marked as following the one before it, and a chord's header
 * tasks, siblings, are not marked as following each other.
 */

import assert from "node:assert/strict";
import { WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { taskEvent, withBrowserDashboard } from "./helpers/dashboard.ts";

Deno.test({
  name: "a 30-step chain's workflow fits a phone's width",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withBrowserDashboard(
      async function* () {},
      { viewport: { width: 375, height: 667 } },
      async ({ dashboard: d, url, page }) => {
        const ids = Array.from({ length: 30 }, (_, i) => `chain-${String(i).padStart(2, "0")}`);
        ids.forEach((id, i) =>
          d.model.apply(taskEvent("task-received", id, {
            name: `wf.step${i}`,
            args: `(${i},)`,
            kwargs: "{}",
            root_id: ids[0],
            parent_id: i ? ids[i - 1] : null,
          }))
        );
        // A chord: its header's three tasks are siblings under the root, the body below them.
        const fan = ["fan-root", "fan-a", "fan-b", "fan-c", "fan-body"];
        const parents = [null, "fan-root", "fan-root", "fan-root", "fan-c"];
        fan.forEach((id, i) =>
          d.model.apply(taskEvent("task-received", id, {
            name: `wf.${id}`,
            args: "()",
            kwargs: "{}",
            root_id: "fan-root",
            parent_id: parents[i],
          }))
        );
        await page.goto(`${url}/#/tasks/${ids[29]}`);
        const steps = page.getByRole("list", { name: "Workflow steps from the root" });
        await steps.waitFor();
        const layout = await page.evaluate(`(() => {
        const vw = document.documentElement.clientWidth;
        const lis = [...document.querySelectorAll("ol.steps li")].map((li) =>
          li.getBoundingClientRect()
        );
        return {
          vw,
          scrollWidth: document.documentElement.scrollWidth,
          steps: lis.length,
          outside: lis.filter((b) => b.right > vw || b.left < 0).length,
        };
      })()`);
        assert.deepEqual(layout, { vw: 375, scrollWidth: 375, steps: 30, outside: 0 });
        assert.equal(await steps.locator("li.next").count(), 29);
        await page.goto(`${url}/#/tasks/fan-body`);
        await steps.locator("li").nth(4).waitFor();
        assert.deepEqual(
          await steps.locator("li").evaluateAll((lis) => lis.map((li) => li.className)),
          ["", "next", "", "", "current next"],
        );
      },
    );
  },
});
