/**
 * An action's error in the browser: an alert (read out at once, not
 * politely as a success is), still there after the 5 s a success shows
 * for, and gone on Escape or its Dismiss button.
 */

import assert from "node:assert/strict";
import { WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { taskEvent, withBrowserDashboard } from "./helpers/dashboard.ts";

Deno.test({
  name: "dashboard UI: an action's error is an alert kept until dismissed",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withBrowserDashboard(async function* () {}, {}, async ({ dashboard: d, url, page }) => {
      d.model.apply(taskEvent("task-received", "al-1", { name: "al.slow", args: "(1,)" }));
      d.model.apply(taskEvent("task-started", "al-1"));
      // A refusal as a worker's reply brings it (409 worker_refused)
      await page.route("**/api/tasks/al-1/revoke", (route) =>
        route.fulfill({
          status: 409,
          contentType: "application/json",
          body: JSON.stringify({
            error: { code: "worker_refused", message: "w@h refused revoke: test" },
          }),
        }));
      await page.goto(`${url}/#/tasks/al-1`);
      const revoke = page.getByRole("button", { name: "Revoke" });
      const alert = page.getByRole("alert").filter({ hasText: "w@h refused revoke: test" });
      await revoke.click();
      await alert.waitFor();
      assert.equal(await page.getByRole("status").filter({ hasText: "refused" }).count(), 0);
      await page.waitForTimeout(6_000); // past the 5 s a success shows for
      assert.equal(await alert.isVisible(), true, "the error is still shown");
      await page.keyboard.press("Escape");
      await alert.waitFor({ state: "hidden" });
      await revoke.click();
      await alert.waitFor();
      await page.getByRole("button", { name: "Dismiss" }).click();
      await alert.waitFor({ state: "hidden" });
    });
  },
});
