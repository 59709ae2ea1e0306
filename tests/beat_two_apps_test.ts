/**
 * Two different apps sharing one store namespace (the default
 * `beatNamespace` on one database): the standby says what to set, and the
 * leader keeps the other app's run states.
 */

import assert from "node:assert/strict";
import { type LogRecord, reset } from "@logtape/logtape";
import { Beat, Celery, PeriodicTasks } from "../mod.ts";
import { type Message, PUBLISHER } from "../protocol.ts";
import { captureLogs } from "./helpers/logs.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function text(r: LogRecord): string {
  return r.message.map((m) => typeof m === "string" ? m : String(m)).join("");
}

/** Poll `cond`; a generous deadline turns a hang into a failure naming `what`. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 1500) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function project(broker: string, name: string, hostname = `beat-${name}`) {
  const app = new Celery({
    broker,
    beatSchedule: { [`${name}-tick`]: { task: `${name}.tick`, schedule: 0.2 } },
  });
  const sent: Message[] = [];
  app[PUBLISHER] = (m) => {
    sent.push(m);
    return Promise.resolve();
  };
  const beat = new Beat({ app, leaseTime: 3, maxInterval: 0.2, hostname });
  return { app, sent, beat };
}

async function runs(app: Celery): Promise<Map<string, string>> {
  const periodic = new PeriodicTasks(app);
  try {
    return await (await periodic.store()).readRuns();
  } finally {
    await periodic.close();
  }
}

Deno.test("beat two apps: the standby of another app warns, naming beatNamespace", async () => {
  const logs = await captureLogs("info");
  const dir = await Deno.makeTempDir();
  const a = project(`kv://${dir}/b.sqlite`, "projA");
  const b = project(`kv://${dir}/b.sqlite`, "projB");
  try {
    await a.beat.start();
    await until(() => a.sent.length >= 1, "projA's leader to send");
    await b.beat.start();
    const warned = () =>
      logs.find((r) => r.level === "warning" && /different schedule/.test(text(r)));
    await until(() => warned() !== undefined, "the standby's warning");
    assert.equal(b.beat.isLeader, false);
    assert.equal(b.sent.length, 0);
    assert.match(text(warned()!), /beat-projA leads .*\(projB-tick\).*beatNamespace/s);
  } finally {
    await b.beat.stop();
    await a.beat.stop();
    await a.app.close();
    await b.app.close();
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("beat two apps: a standby of the same app does not warn", async () => {
  const logs = await captureLogs("info");
  const dir = await Deno.makeTempDir();
  const a = project(`kv://${dir}/b.sqlite`, "projA");
  const replica = project(`kv://${dir}/b.sqlite`, "projA", "beat-projA-2");
  try {
    await a.beat.start();
    await until(() => a.sent.length >= 1, "the leader to send");
    await replica.beat.start();
    await until(() => logs.some((r) => /stands by/.test(text(r))), "the replica to stand by");
    await until(() => a.sent.length >= 3, "two more sends");
    assert.equal(replica.beat.isLeader, false);
    assert.ok(!logs.some((r) => /different schedule/.test(text(r))));
  } finally {
    await replica.beat.stop();
    await a.beat.stop();
    await a.app.close();
    await replica.app.close();
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("beat two apps: a leader keeps the run states of another app's entries", async () => {
  // It deleted them as entries "gone from the code": the other app's entries then started afresh.
  const dir = await Deno.makeTempDir();
  const b = project(`kv://${dir}/b.sqlite`, "projB");
  const a = project(`kv://${dir}/b.sqlite`, "projA");
  try {
    await b.beat.start();
    await until(() => b.sent.length >= 2, "projB's sends");
    await b.beat.stop();
    const before = (await runs(b.app)).get("projB-tick");
    assert.ok(before);
    await a.beat.start();
    await until(() => a.sent.length >= 2, "projA's sends");
    await a.beat.stop();
    const after = await runs(a.app);
    assert.equal(after.get("projB-tick"), before, "projB's run state is kept");
    assert.ok(after.has("projA-tick"));
  } finally {
    await a.app.close();
    await b.app.close();
    await Deno.remove(dir, { recursive: true });
  }
});
