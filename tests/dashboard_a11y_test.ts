/**
 * The dashboard's accessibility, checked by axe-core (WCAG 2.0 / 2.1, levels
 * A and AA) in Debian's Chromium rather than by eye: every page (Overview,
 * Workers and a worker's page, Tasks and a failed task's page with its
 * traceback, Queues with a parked message) on the replayed events of a real
 * Celery 5.2.6 worker, at a laptop's width and at a phone's, and again with
 * `readOnly`. Each test fails listing every rule broken, a page at a time,
 * with the elements breaking it; the Queues page's Purge dialog is checked
 * open as well. The rules are axe-core's tags wcag2a, wcag2aa, wcag21a,
 * wcag21aa and best-practice (landmarks, headings, regions).
 */

import assert from "node:assert/strict";
import axe from "axe-core";
import type { Page } from "playwright-core";
import type { DashboardOptions } from "../dashboard.ts";
import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { memoryDashboard, replay } from "./helpers/dashboard.ts";

/** The replayed worker's name, and a task of its that failed with `ValueError('boom')`. */
const WORKER = "celery@fixture-host";
const FAILED = "285fdcc6-1ac9-4962-a447-784c77cf3785";

/** The rule sets checked: WCAG 2.0 and 2.1, levels A and AA, and axe-core's best practices. */
const TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"];

/** One rule axe-core found broken on a page, with the elements breaking it. */
interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

/** Every page of the dashboard: its hash and an element it shows once its data is in. */
const PAGES: [string, string][] = [
  ["#/overview", "figure.chart canvas"],
  ["#/workers", `tr[data-worker="${WORKER}"]`],
  [`#/workers/${encodeURIComponent(WORKER)}`, "h2"],
  ["#/tasks", "tr[data-task]"],
  [`#/tasks/${FAILED}`, "[data-testid=traceback]"],
  ["#/queues", "tr[data-parked]"],
];

/**
 * Run axe-core's rules of {@linkcode TAGS} on `page` as it is now; fails
 * unless each `required` rule found elements to check (axe ran on the
 * page, not on an empty document).
 */
async function check(
  page: Page,
  required = ["color-contrast", "landmark-one-main", "page-has-heading-one"],
): Promise<Violation[]> {
  if (!await page.evaluate<boolean>("typeof window.axe === 'object'")) {
    // evaluated through the DevTools protocol: the dashboard's Content-Security-Policy (rightly)
    // refuses an inline script tag
    await page.evaluate(`${axe.source}\n;true`);
  }
  const { violations, passed } = await page.evaluate<
    { violations: Violation[]; passed: string[] },
    string[]
  >(
    (tags) =>
      // deno-lint-ignore no-explicit-any
      (globalThis as any).axe.run((globalThis as any).document, {
        runOnly: { type: "tag", values: tags },
      })
        .then((r: { violations: Violation[]; passes: { id: string }[] }) => ({
          violations: r.violations.map((v) => ({
            id: v.id,
            impact: v.impact,
            help: v.help,
            nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })),
          })),
          passed: r.passes.map((p) => p.id),
        })),
    TAGS,
  );
  const ran = [...passed, ...violations.map((v) => v.id)];
  for (const rule of required) {
    assert.ok(ran.includes(rule), `axe-core did not check ${rule} on ${page.url()}`);
  }
  return violations;
}

/** What a page's violations read as in the test's failure: a rule a line, then its elements. */
function describe(page: string, violations: Violation[]): string {
  return violations.map((v) =>
    `${page}: ${v.id} (${v.impact}) ${v.help}\n` +
    v.nodes.map((n) => `    ${n.target.join(" ")}: ${n.failureSummary?.replace(/\n\s*/g, "; ")}`)
      .join("\n")
  ).join("\n");
}

/**
 * A test opening every page of a dashboard (with `options`) on the replayed
 * worker and a parked message, at `viewport`, and failing with every
 * violation axe-core reports.
 */
function a11yTest(
  name: string,
  viewport: { width: number; height: number },
  options: Partial<DashboardOptions> = {},
): void {
  Deno.test({
    name,
    ignore: WITHOUT_CHROMIUM,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const { app, dashboard, url } = await memoryDashboard(replay().source, undefined, options);
      const queue = "a11y-parked"; // the in-memory broker is the test's own
      try {
        await app.sendTask("no.such.task", [], { queue });
        const broker = await app.broker();
        const [m] = await broker.take([queue], { max: 1, signal: AbortSignal.timeout(2000) });
        await broker.reject([{ delivery: m, reason: 'unregistered task "no.such.task"' }]);
        await app.sendTask("capapp.add", [1, 2]); // a queue with a message, to purge
        const browser = await launchChromium({ viewport });
        try {
          const page = await browser.context.newPage();
          const found: string[] = [];
          const counts: Record<string, number> = {};
          for (const [hash, shown] of PAGES) {
            await page.goto(`${url}/${hash}`);
            await page.locator(shown).first().waitFor();
            const violations = await check(page);
            counts[hash] = violations.length;
            if (violations.length) found.push(describe(hash, violations));
          }
          if (!options.readOnly) {
            // the Queues page's confirmation dialog, open
            await page.getByRole("button", { name: "Purge…" }).first().click();
            await page.getByRole("dialog").waitFor();
            // a modal dialog hides the page's landmarks and headings from the check
            const violations = await check(page, ["color-contrast", "label"]);
            counts["purge dialog"] = violations.length;
            if (violations.length) found.push(describe("purge dialog", violations));
          }
          assert.deepEqual(found, [], `rules broken a page: ${JSON.stringify(counts)}`);
        } finally {
          await browser.close();
        }
      } finally {
        await dashboard.stop();
        await app.close();
      }
    },
  });
}

const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

a11yTest("dashboard a11y: every page passes axe-core's WCAG 2.1 A/AA rules on a laptop", LAPTOP);
a11yTest("dashboard a11y: every page passes axe-core's WCAG 2.1 A/AA rules on a phone", PHONE);
a11yTest("dashboard a11y: every read-only page passes axe-core's WCAG 2.1 A/AA rules", LAPTOP, {
  readOnly: true,
});
a11yTest("dashboard a11y: every read-only page passes them on a phone", PHONE, { readOnly: true });
