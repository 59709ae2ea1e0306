/**
 * The Overview's runtime chart in Chromium under sporadic traffic: a
 * 5-second window with tasks between windows without any (no runtime, a
 * gap) is drawn, as a point, rather than left out for want of a
 * neighbour to draw a line to.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard, type DashboardEvent } from "../dashboard.ts";
import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";

/** Pixels of the chart's canvas in a series' colour (p50 #1f5fa8, p95 #8a5a00, p99 #b3261e). */
const SERIES_PIXELS = `(() => {
  const colours = new Set(["31,95,168", "138,90,0", "179,38,30"]);
  const canvas = document.querySelector('figure[aria-label^="Runtime"] canvas');
  const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (colours.has(data[i] + "," + data[i + 1] + "," + data[i + 2])) n++;
  }
  return n;
})()`;

Deno.test({
  name: "dashboard overview: a lone window of runtimes is drawn",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
    const at = Date.now() / 1000 - 60; // one task a minute ago, none around it
    const events: DashboardEvent[] = [
      { type: "task-received", hostname: "w@h", timestamp: at, uuid: "t1", name: "a" },
      { type: "task-started", hostname: "w@h", timestamp: at, uuid: "t1" },
      {
        type: "task-succeeded",
        hostname: "w@h",
        timestamp: at + 0.05,
        uuid: "t1",
        result: "1",
        runtime: 0.05,
      },
    ];
    const d = new Dashboard({
      app,
      port: 0,
      events: async function* () {
        yield events;
      },
      enableEvents: false,
      inspector: null,
    });
    const { url } = await d.start();
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      await page.goto(url);
      await page.locator('figure[aria-label^="Runtime"] canvas').waitFor();
      await page.waitForTimeout(500);
      const drawn = await page.evaluate<number>(SERIES_PIXELS);
      assert.ok(drawn > 0, "the runtimes of the lone window are not drawn");
    } finally {
      await browser.close();
      await d.stop();
      await app.close();
    }
  },
});
