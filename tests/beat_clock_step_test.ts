/**
 * A beat whose clock steps back by more than its lease (NTP, a VM resumed)
 * right after a crontab or one-off (`at`) run: Celery's beat does not send
 * that slot again (it counts from the stored last run), and neither may this
 * one. Faked `Date.now`, as the store and the loop read it.
 */

import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { at, Beat, Celery } from "../mod.ts";
import { PUBLISHER } from "../protocol.ts";
import { captureLogs } from "./helpers/logs.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function text(r: LogRecord): string {
  return r.message.map((m) => typeof m === "string" ? m : String(m)).join("");
}

/** Wait until `ok()` holds, at most 30 s: generous, so a hang fails at the assertion after it. */
async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; !ok() && i < 1500; i++) await sleep(20);
}

Deno.test("beat clock step: a step back longer than the lease does not re-send the crontab or at slot", async () => {
  const logs = await captureLogs("info");
  const realNow = Date.now;
  const start = realNow();
  // The fake clock: real time shifted, and stepped by the test.
  let offset = Date.UTC(2026, 5, 1, 12, 0, 59, 700) - start;
  Date.now = () => realNow() + offset;
  const slot = Date.UTC(2026, 5, 1, 12, 1, 0);
  const app = new Celery({
    broker: "kv://:memory:",
    timezone: "UTC",
    beatSchedule: {
      minute: { task: "t.minute", schedule: "* * * * *" },
      once: { task: "t.once", schedule: at(new Date(slot).toISOString()) },
    },
  });
  const sends: Record<string, string[]> = { "t.minute": [], "t.once": [] };
  app[PUBLISHER] = (message) => {
    sends[message.headers.task as string].push(new Date(Date.now()).toISOString());
    return Promise.resolve();
  };
  const beat = new Beat({ app, leaseTime: 1, maxInterval: 0.05 });
  try {
    await beat.start();
    await until(() => sends["t.minute"].length >= 1 && sends["t.once"].length >= 1);
    assert.equal(sends["t.minute"].length, 1, `the 12:01 slot ran: ${sends["t.minute"]}`);
    // Back 3 s, three leases: the stored run is now ahead of this host's clock.
    offset -= 3000;
    await until(() => Date.now() > slot + 600);
    assert.deepEqual(
      [sends["t.minute"].length, sends["t.once"].length],
      [1, 1],
      `sent again after the step back: ${JSON.stringify(sends)}`,
    );
    const warn = logs.find((r) =>
      r.level === "warning" && /ahead of this host's clock/.test(text(r))
    );
    assert.ok(warn, "the stored run ahead is logged");
    assert.match(text(warn), /12:02:00\.000Z/);
    // The next slot is still sent, once.
    offset += Date.UTC(2026, 5, 1, 12, 1, 59, 800) - Date.now();
    await until(() => sends["t.minute"].length >= 2);
    assert.equal(sends["t.minute"].length, 2, `the 12:02 slot: ${JSON.stringify(sends)}`);
    assert.ok(sends["t.minute"][1] >= "2026-06-01T12:02:00.000Z", sends["t.minute"][1]);
    assert.equal(sends["t.once"].length, 1);
  } finally {
    await beat.stop();
    await app.close();
    Date.now = realNow;
    await reset();
  }
});
