/**
 * The dashboard on a phone (390x844, an iPhone's width) in Debian's
 * Chromium: the Tasks table reads as one labelled card a task, with no
 * sideways scroll in its box, and stays a table for screen readers; at a
 * laptop's width it is the plain table. The Workers table (on a real Celery
 * 5.2.6 worker's replayed events) and the Queues page's parked messages read
 * the same way, a worker's page wraps its values between words, controls are
 * tall enough to tap, and the Overview's chart legends are one line under
 * their plots, without the tables' shading and rules, at both widths.
 * Screenshots go to .scratch/screenshots/dashboard_phone_test/.
 */

import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import type { DashboardEvent } from "../dashboard.ts";
import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import {
  memoryDashboard,
  replay,
  screenshots,
  type withBrowserDashboard,
} from "./helpers/dashboard.ts";

const shot = screenshots("dashboard_phone_test");

/** An iPhone's viewport. */
const PHONE = { width: 390, height: 844 };

/** A task with a long dotted name, args, kwargs and a result, and one still waiting. */
function tasks(): (signal: AbortSignal) => AsyncIterable<DashboardEvent> {
  const now = Date.now() / 1000;
  const base = { hostname: "celery@phone-host" };
  const events: DashboardEvent[] = [
    { ...base, type: "worker-online", timestamp: now, freq: 2 },
    {
      ...base,
      type: "task-received",
      uuid: "long-1",
      timestamp: now,
      name: "billing.tasks.reconcile_customer_invoices",
      args: "('acme-corp', 2026)",
      kwargs: "{'dry_run': False, 'notify': ['ops@example.com']}",
    },
    {
      ...base,
      type: "task-succeeded",
      uuid: "long-1",
      timestamp: now + 0.8,
      result: "{'reconciled': 1234, 'skipped': 2}",
      runtime: 0.8,
    },
    {
      ...base,
      type: "task-received",
      uuid: "short-1",
      timestamp: now + 1,
      name: "tasks.add",
      args: "(2, 3)",
      kwargs: "{}",
    },
  ];
  return async function* (signal) {
    yield* events;
    await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
  };
}

/**
 * One Chromium for the file's tests (a launch costs seconds of CPU on a
 * loaded host); each test has a page and a dashboard of its own. The last
 * test closes it.
 */
let chromium: ReturnType<typeof launchChromium> | undefined;

/**
 * A Chromium test running `fn` on a new page of the file's Chromium, at
 * `options.viewport` (1280x800 by default), and a {@linkcode memoryDashboard}
 * fed by the events of `options.events` ({@linkcode tasks} by default); the
 * page and the dashboard are closed afterwards, whatever `fn` did.
 */
function browserTest(
  name: string,
  options: {
    viewport?: { width: number; height: number };
    events?: () => (signal: AbortSignal) => AsyncIterable<DashboardEvent>;
  },
  fn: Parameters<typeof withBrowserDashboard>[2],
): void {
  Deno.test({
    name,
    ignore: WITHOUT_CHROMIUM,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const { app, dashboard, url } = await memoryDashboard((options.events ?? tasks)());
      try {
        const browser = (await (chromium ??= launchChromium())).context;
        const page = await browser.newPage();
        try {
          await page.setViewportSize(options.viewport ?? { width: 1280, height: 800 });
          await fn({ app, dashboard, url, page, browser });
        } finally {
          await page.close();
        }
      } finally {
        await dashboard.stop();
        await app.close();
      }
    },
  });
}

/**
 * What a screen reader is given on `page`: Chromium's accessibility tree,
 * read once, as a function from a role to the names of its nodes.
 */
async function accessibleRoles(
  browser: Parameters<Parameters<typeof withBrowserDashboard>[2]>[0]["browser"],
  page: Page,
): Promise<(role: string) => (string | undefined)[]> {
  const cdp = await browser.newCDPSession(page);
  const { nodes } = await cdp.send("Accessibility.getFullAXTree") as {
    nodes: { role?: { value: string }; name?: { value: string }; ignored: boolean }[];
  };
  return (role) =>
    nodes.filter((n) => !n.ignored && n.role?.value === role).map((n) => n.name?.value);
}

browserTest(
  "dashboard UI: the Tasks table fits a phone's width as one labelled card a task, a table still",
  {},
  async ({ url, page, browser }) => {
    const box = page.locator(".table-wrap", { has: page.getByTestId("tasks-table") });
    const row = page.locator('tr[data-task="long-1"]');
    const widths = () => box.evaluate((e) => ({ scroll: e.scrollWidth, client: e.clientWidth }));
    // a laptop: the table, one line a task under the 8 column headers
    await page.setViewportSize({ width: 1366, height: 768 });
    await page.goto(`${url}/#/tasks`);
    await row.getByText("SUCCESS").waitFor();
    await page.locator('tr[data-task="short-1"]').waitFor();
    assert.deepEqual(await page.locator("thead th").allTextContents(), [
      ...["Name", "State", "Id", "Args", "Result", "Worker", "Seen", "Runtime"],
    ]);
    const tops = await row.locator("td").evaluateAll((tds) =>
      tds.map((td) => td.getBoundingClientRect().top)
    );
    assert.equal(new Set(tops).size, 1, `cells at ${tops}`);
    await shot(page, "tasks-laptop");
    // a phone: nothing to scroll sideways; each value under its label, the result shown
    await page.setViewportSize({ width: 390, height: 844 });
    const narrow = await widths();
    assert.ok(
      narrow.scroll <= narrow.client,
      `${narrow.scroll}px in ${narrow.client}px at 390px`,
    );
    const label = (name: string) =>
      page.evaluate<string>(
        `getComputedStyle(document.querySelector('tr[data-task="long-1"] td[data-label="${name}"]'), "::before").content`,
      );
    for (const name of ["Name", "State", "Args", "Result", "Runtime"]) {
      assert.equal(await label(name), `"${name}"`);
    }
    const result = row.locator('td[data-label="Result"]');
    assert.ok(await result.isVisible(), "the result is shown on a phone");
    assert.match(await result.textContent() ?? "", /'reconciled': 1234/);
    // an empty cell (no result yet) keeps its label's height: labels do not overlap
    const empty = await page.locator('tr[data-task="short-1"] td[data-label="Result"]')
      .evaluate((td) => td.getBoundingClientRect().height);
    assert.ok(empty >= 14, `an empty cell is ${empty}px tall`);
    await shot(page, "tasks-phone");
    // what a screen reader is given is still a table with its column headers
    const roles = await accessibleRoles(browser, page);
    assert.equal(roles("table").length, 1);
    assert.deepEqual(roles("columnheader"), ["Name", "State", "Args", "Result", "Runtime"]);
    assert.ok(roles("cell").length >= 10, `cells: ${roles("cell")}`);
  },
);

browserTest(
  "dashboard UI: the Workers table fits a phone's width as one card a worker, a table still",
  { events: () => replay().source },
  async ({ url, page, browser }) => {
    const table = page.locator(".table-wrap", { has: page.locator("tr[data-worker]") });
    const row = page.locator('tr[data-worker="celery@fixture-host"]');
    const widths = () => table.evaluate((e) => ({ scroll: e.scrollWidth, client: e.clientWidth }));
    // a laptop: one line a worker, every column under its header
    await page.setViewportSize({ width: 1366, height: 768 });
    await page.goto(`${url}/#/workers`);
    await row.getByText("online").waitFor();
    assert.deepEqual(await page.locator("thead th").allTextContents(), [
      ...["Worker", "Status", "Language", "Active", "Processed", "Succeeded", "Failed"],
      ...["Pool", "Queues", "Load", "Heartbeat"],
    ]);
    const tops = await row.locator("td").evaluateAll((tds) =>
      tds.map((td) => td.getBoundingClientRect().top)
    );
    assert.equal(tops.length, 11);
    assert.equal(new Set(tops).size, 1, `cells at ${tops}`);
    const wide = await widths();
    assert.ok(wide.scroll <= wide.client, `${wide.scroll}px in ${wide.client}px at 1366px`);
    await shot(page, "workers-laptop");
    // a phone: no sideways scroll in the table's box; each value labelled
    await page.setViewportSize({ width: 390, height: 844 });
    const narrow = await widths();
    assert.ok(
      narrow.scroll <= narrow.client,
      `${narrow.scroll}px in ${narrow.client}px at 390px`,
    );
    const label = await page.evaluate<string>(
      `getComputedStyle(document.querySelector('tr[data-worker] td[data-label="Processed"]'), "::before").content`,
    );
    assert.equal(label, '"Processed"');
    await shot(page, "workers-phone");
    // what a screen reader is given is still a table with its column headers
    const roles = await accessibleRoles(browser, page);
    assert.equal(roles("table").length, 1);
    assert.deepEqual(roles("columnheader"), [
      ...["Worker", "Status", "Language", "Active", "Processed", "Succeeded", "Failed", "Pool"],
    ]);
    assert.ok(roles("cell").length >= 8, `cells: ${roles("cell")}`);
  },
);

browserTest(
  "dashboard UI: a worker's page wraps its values between words on a phone",
  { viewport: PHONE },
  async ({ url, page }) => {
    await page.goto(`${url}/#/workers/celery%40phone-host`);
    const pool = page.locator("dd", { hasText: "no inspect reply yet" }).first();
    await pool.waitFor();
    await shot(page, "worker-phone");
    // every word of a wrapped value is on one line (word-break: break-all split "yet")
    await pool.evaluate((dd) => dd.setAttribute("data-probe", ""));
    const split = await page.evaluate<string[]>(`(() => {
      const text = document.querySelector("dd[data-probe]").firstChild;
      const out = [];
      for (const m of text.data.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(text, m.index);
        range.setEnd(text, m.index + m[0].length);
        if (new Set([...range.getClientRects()].map((r) => r.top)).size > 1) out.push(m[0]);
      }
      return out;
    })()`);
    assert.deepEqual(split, [], `words split across lines: ${split}`);
  },
);

browserTest(
  "dashboard UI: a parked message with a long reason reads as a labelled card on a phone",
  { viewport: PHONE },
  async ({ app, url, page }) => {
    const name = "billing.tasks.reconcile_customer_invoices_for_the_whole_month";
    await app.sendTask(name, [], { queue: "phone-parked" });
    const broker = await app.broker();
    const [m] = await broker.take(["phone-parked"], {
      max: 1,
      signal: AbortSignal.timeout(2000),
    });
    await broker.reject([{
      delivery: m,
      reason: `unregistered task "${name}": no worker registered it (the module defining it ` +
        "was not imported by the worker's --app)",
    }]);
    await page.goto(`${url}/#/queues`);
    const row = page.locator("tr[data-parked]");
    await row.waitFor();
    await shot(page, "queues-phone");
    // nothing to scroll sideways, on the page or in the table's box
    const box = page.locator(".table-wrap", { has: page.getByTestId("parked-table") });
    const widths = await box.evaluate((e) => ({
      scroll: e.scrollWidth,
      client: e.clientWidth,
      page: e.ownerDocument.documentElement.scrollWidth,
    }));
    assert.ok(widths.scroll <= widths.client, `${widths.scroll}px in ${widths.client}px`);
    assert.ok(widths.page <= 390, `the page is ${widths.page}px wide`);
    // each value under its label, the reason whole and as wide as the card allows
    for (const label of ["Parked at", "Queue", "Task", "Reason"]) {
      const content = await page.evaluate<string>(
        `getComputedStyle(document.querySelector('tr[data-parked] td[data-label="${label}"]'), "::before").content`,
      );
      assert.equal(content, `"${label}"`);
    }
    const reason = row.locator('td[data-label="Reason"]');
    assert.match(await reason.textContent() ?? "", /was not imported by the worker's --app\)$/);
    const reasonWidth = await reason.evaluate((td) => td.getBoundingClientRect().width);
    assert.ok(reasonWidth > 300, `the reason's cell is ${reasonWidth}px wide`);
    // the task's name keeps its words: it is not cut to a few letters a line
    const task = await row.locator('td[data-label="Task"]').evaluate((td) =>
      td.getBoundingClientRect().height
    );
    assert.ok(task < 120, `the task's cell is ${task}px tall`);
  },
);

/** What the legend test measures of a chart (px, in the page). */
interface Legend {
  title: string;
  figure: number;
  plotBottom: number;
  tops: number[];
  top: number;
  right: number;
  shaded: number;
  ruled: number;
}

browserTest(
  "dashboard UI: a chart's legend is one line under the plot, unshaded, on a phone and a laptop",
  {},
  async ({ url, page }) => {
    for (const [width, height, name] of [[390, 844, "phone"], [1366, 768, "laptop"]] as const) {
      await page.setViewportSize({ width, height });
      await page.goto(url);
      await page.locator("figure.chart .u-legend").nth(1).waitFor();
      await shot(page, `overview-${name}`);
      const pageWidth = await page.evaluate<number>("document.documentElement.scrollWidth");
      assert.ok(pageWidth <= width, `the page is ${pageWidth}px wide at ${width}px`);
      const legends = await page.evaluate<Legend[]>(
        `[...document.querySelectorAll("figure.chart")]
      .map((f) => {
        const rect = (e) => e.getBoundingClientRect();
        const items = [...f.querySelectorAll(".u-legend .u-series")].map(rect);
        const cells = [...f.querySelectorAll(".u-legend th, .u-legend td")];
        return {
          title: f.getAttribute("aria-label"),
          figure: rect(f).right,
          plotBottom: rect(f.querySelector(".u-over")).bottom,
          tops: [...new Set(items.map((r) => Math.round(r.top)))],
          top: Math.min(...items.map((r) => r.top)),
          right: Math.max(...items.map((r) => r.right)),
          shaded: cells.filter((c) => getComputedStyle(c).backgroundColor !== "rgba(0, 0, 0, 0)")
            .length,
          ruled: cells.filter((c) => getComputedStyle(c).borderTopStyle !== "none").length,
        };
      })`,
      );
      assert.equal(legends.length, 2);
      for (const l of legends) {
        const at = `${l.title} at ${width}px`;
        // "Time", then every series: one line, under the plot, inside the chart's box
        assert.equal(l.tops.length, 1, `${at}: legend on ${l.tops.length} lines`);
        assert.ok(l.top >= l.plotBottom, `${at}: legend over the plot`);
        assert.ok(l.right <= l.figure, `${at}: legend past the chart's box`);
        // the tables' header shading and cell rules are not drawn in the legend
        assert.equal(l.shaded, 0, `${at}: ${l.shaded} shaded legend cells`);
        assert.equal(l.ruled, 0, `${at}: ${l.ruled} legend cells with a rule`);
      }
    }
  },
);

browserTest(
  "dashboard UI: buttons, fields and the page links are 44 px tall to tap on a phone",
  { viewport: PHONE },
  async ({ url, page }) => {
    const small: string[] = [];
    for (
      const [path, ready] of [
        ["#/tasks", 'tr[data-task="long-1"]'],
        ["#/tasks/long-1", '[data-testid="task-fields"]'],
        ["#/queues", '[data-testid="parked-table"]'],
      ]
    ) {
      await page.goto(`${url}/${path}`);
      await page.locator(ready).waitFor();
      small.push(
        ...await page.evaluate<string[]>(`[...document.querySelectorAll(
          "button, input, select, header nav a")]
          .filter((e) => e.checkVisibility())
          .map((e) => [e, e.getBoundingClientRect().height])
          .filter(([, h]) => h < 44)
          .map(([e, h]) => "${path} " + e.tagName + " '" + (e.tagName === "SELECT" ? e.value : e.textContent || e.type)
            .trim() + "' " + Math.round(h) + "px")`),
      );
    }
    await shot(page, "queues-phone-controls");
    assert.deepEqual(small, [], `too small to tap: ${small.join(", ")}`);
    // a laptop keeps its compact controls
    await page.setViewportSize({ width: 1366, height: 768 });
    const button = await page.getByRole("button", { name: "Requeue" }).evaluate((b) =>
      b.getBoundingClientRect().height
    );
    assert.ok(button < 40, `Requeue is ${button}px tall on a laptop`);
  },
);

Deno.test({
  name: "dashboard UI: close the browser",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await (await chromium)?.close();
});
