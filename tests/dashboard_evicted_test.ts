/**
 * A long-running task sends no event until it ends, so in a bounded task table it would be the
 * least recently updated, and the first evicted: then the dashboard refused to revoke it (404
 * unknown_task) while the worker page still listed it as active. Now the table evicts finished
 * tasks before running ones, and a revoke or terminate takes any id, as Flower's does (on a real
 * server with the in-memory KV broker: the revoke reaches the broker's revoked list).
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard, TaskTable } from "../dashboard.ts";
import { feed } from "./helpers/event_feed.ts";

Deno.test("task table: finished tasks are evicted before a running one; a table of running tasks still makes room", () => {
  const table = new TaskTable({ maxTasks: 4 });
  table.apply({ type: "task-received", hostname: "w", timestamp: 0, uuid: "hold", name: "n" });
  table.apply({ type: "task-started", hostname: "w", timestamp: 1, uuid: "hold" });
  for (let i = 0; i < 20; i++) {
    table.apply({ type: "task-succeeded", hostname: "w", timestamp: 2 + i, uuid: `t${i}` });
  }
  assert.equal(table.get("hold")?.state, "STARTED");
  assert.equal(table.size, 4);
  // only running tasks: the oldest goes, and the table stays at its bound
  const full = new TaskTable({ maxTasks: 3 });
  for (let i = 0; i < 10; i++) {
    full.apply({ type: "task-started", hostname: "w", timestamp: i, uuid: `r${i}` });
  }
  assert.equal(full.size, 3);
  assert.equal(full.get("r0"), undefined);
  assert.equal(full.get("r9")?.state, "STARTED");
});

Deno.test("dashboard: revoke and terminate of a task id the table does not hold are sent; retry still needs a known task", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const d = new Dashboard({
    app,
    port: 0,
    events: feed().source,
    enableEvents: false,
    inspector: null,
  });
  const { url } = await d.start();
  try {
    const { csrfToken } = await (await fetch(`${url}/api/session`)).json();
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${url}/api/tasks/${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-csrf-token": csrfToken },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };
    const revoked = await post("gone-1/revoke", {});
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(
      revoked.body.message,
      "Revoke sent for gone-1; no worker replied within 2 s",
    );
    const terminated = await post("gone-2/terminate", { signal: "SIGKILL" });
    assert.equal(terminated.status, 200, JSON.stringify(terminated.body));
    const ids = (await (await app.broker()).listRevoked()).map((e) => e.id).sort();
    assert.deepEqual(ids, ["gone-1", "gone-2"]);
    // the signal is still checked
    assert.equal((await post("gone-3/terminate", { signal: "SIGFOO" })).status, 400);
    const retry = await post("gone-1/retry", {});
    assert.equal(retry.status, 404);
    assert.equal(retry.body.error.code, "unknown_task");
  } finally {
    await d.stop();
    await app.close();
  }
});
