/**
 * A leader whose lease runs out while a step blocks (a publish hanging on a
 * stalled broker) takes a new lease afterwards: that gap, when no beat held
 * the lease, is logged as a warning, not only as an INFO "is the leader".
 */

import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { Beat, Celery } from "../mod.ts";
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

Deno.test("beat lease gap: a lease that ran out during a hung publish is taken again with a WARN", async () => {
  const logs = await captureLogs("info");
  const app = new Celery({
    broker: "kv://:memory:",
    beatSchedule: { tick: { task: "t.tick", schedule: 0.2 } },
  });
  let sent = 0;
  app[PUBLISHER] = async () => {
    // The first publish hangs 2.5 s: two and a half leases.
    if (sent++ === 0) await sleep(2500);
  };
  const beat = new Beat({ app, leaseTime: 1, maxInterval: 0.1 });
  try {
    await beat.start();
    await until(() => sent >= 3);
    assert.equal(beat.token, 2, "the beat leads again, with a new token");
    const warn = logs.find((r) => r.level === "warning" && /ran out/.test(text(r)));
    assert.ok(warn, `no warning; logged: ${logs.map(text).join(" | ")}`);
    assert.match(text(warn), /fencing token 1\b.*fencing token 2\b/);
    // Held 2.5 s or more without renewal: about 1.5 s past the 1 s lease.
    const gap = Number(/no beat held the lease for about ([\d.]+) s/.exec(text(warn))?.[1]);
    assert.ok(gap >= 1, `gap ${gap} s in: ${text(warn)}`);
  } finally {
    await beat.stop();
    await app.close();
    await reset();
  }
});
