/**
 * KV keeps the {@link REVOKED_KEPT} revocations that expire last, as the
 * Redis set does (Celery's `REVOKES_MAX`, what a worker remembers): before,
 * every revoked id of the last 3 hours stayed under `["revoked", id]`, so a
 * script revoking millions grew the file and every worker start read them
 * all.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { openBroker } from "../protocol.ts";
import { addRevoked, listRevoked, type RevokedScope } from "../src/broker/kv_revoked.ts";
import { REVOKED_KEPT } from "../src/broker/shared_state.ts";
import { Worker } from "../src/worker/worker.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const KV_REVOKED = JSON.stringify(new URL("../src/broker/kv_revoked.ts", import.meta.url).href);

/** Revokes `args[2]` ids `${args[1]}-i` (expiring `args[3]` + 10·i ms) on file `args[0]`, keeping 100. */
const REVOKE_SCRIPT = `import { addRevoked } from ${KV_REVOKED};
const [path, name, n, base] = Deno.args;
const kv = await Deno.openKv(path);
const scope = { kv, k: (...parts) => ["t", ...parts] };
for (let i = 0; i < Number(n); i += 7) {
  const some = [];
  for (let j = i; j < Math.min(i + 7, Number(n)); j++) {
    some.push({ id: name + "-" + j, expiresAt: new Date(Number(base) + j * 10) });
  }
  await addRevoked(scope, some, { kept: 100 });
}
kv.close();
`;

function scopeOf(kv: Deno.Kv): RevokedScope {
  return { kv, k: (...parts) => ["t", ...parts] };
}

/** Every key under the test's namespace whose second part names revoked ids. */
async function revokedKeys(kv: Deno.Kv, ns: string): Promise<number> {
  let n = 0;
  for await (const e of kv.list({ prefix: [ns] })) {
    if (String(e.key[1]).startsWith("revoked")) n++;
  }
  return n;
}

Deno.test("kv revoked: keeps the `kept` ids that expire last, not the last added", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const scope = scopeOf(kv);
    const base = Date.now() + 3_600_000;
    // Added in a shuffled order: what is kept is chosen by expiry, as Redis's sorted set.
    const order = Array.from({ length: 250 }, (_, i) => (i * 97) % 250);
    for (let i = 0; i < order.length; i += 30) {
      const some = order.slice(i, i + 30).map((j) => ({
        id: `r-${j}`,
        expiresAt: new Date(base + j * 10),
      }));
      await addRevoked(scope, some, { kept: 100 });
    }
    const kept = await listRevoked(scope);
    assert.deepEqual(
      kept.map((e) => e.id),
      Array.from({ length: 100 }, (_, i) => `r-${150 + i}`),
      "the 100 that expire last, soonest first",
    );
    assert.ok(await revokedKeys(kv, "t") <= 2 * 100 + 1, "an id, its index entry and one count");

    // Revoking a kept id again with a later expiry moves it, not counting it twice.
    await addRevoked(scope, [{ id: "r-150", expiresAt: new Date(base + 10_000) }], { kept: 100 });
    const again = await listRevoked(scope);
    assert.equal(again.length, 100);
    assert.equal(again.at(-1)?.id, "r-150");
    // An earlier expiry than the stored one changes nothing (Redis's ZADD GT).
    await addRevoked(scope, [{ id: "r-249", expiresAt: new Date(base) }], { kept: 100 });
    assert.equal(
      (await listRevoked(scope)).find((e) => e.id === "r-249")?.expiresAt.getTime(),
      base + 2490,
    );
    // One that expires before all the kept ones is itself the one dropped.
    await addRevoked(scope, [{ id: "early", expiresAt: new Date(base - 1) }], { kept: 100 });
    const ids = (await listRevoked(scope)).map((e) => e.id);
    assert.equal(ids.length, 100);
    assert.ok(!ids.includes("early"));
  } finally {
    kv.close();
  }
});

Deno.test("kv revoked: expired ids stop counting; a later revoke clears their entries", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const scope = scopeOf(kv);
    const soon = Array.from({ length: 5 }, (_, i) => ({
      id: `s-${i}`,
      expiresAt: new Date(Date.now() + 30),
    }));
    await addRevoked(scope, soon, { kept: 5 });
    await new Promise((r) => setTimeout(r, 60));
    const later = new Date(Date.now() + 3_600_000);
    await addRevoked(scope, [{ id: "l-0", expiresAt: later }, { id: "l-1", expiresAt: later }], {
      kept: 5,
    });
    assert.deepEqual((await listRevoked(scope)).map((e) => e.id), ["l-0", "l-1"]);
    assert.equal(await revokedKeys(kv, "t"), 2 * 2 + 1, "the expired ids' entries are gone");
  } finally {
    kv.close();
  }
});

Deno.test("kv revoked: 60 ids of 1,500 bytes are stored (commits stay under Deno KV's 80 KB of keys)", async () => {
  // Before, 200 ids went in each commit whatever their size: "Total key size too large".
  const kv = await Deno.openKv(":memory:");
  try {
    const expiresAt = new Date(Date.now() + 3_600_000);
    const ids = Array.from({ length: 60 }, (_, i) => `${i}-${"x".repeat(1500)}`);
    await addRevoked(scopeOf(kv), ids.map((id) => ({ id, expiresAt })));
    assert.deepEqual((await listRevoked(scopeOf(kv))).map((e) => e.id).sort(), ids.sort());
  } finally {
    kv.close();
  }
});

Deno.test("kv revoked: two processes revoking on one file keep exactly `kept`, the latest", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-revoked-cap-" });
  const path = `${dir}/db.sqlite`;
  const script = `${dir}/revoke.ts`;
  await Deno.writeTextFile(script, REVOKE_SCRIPT);
  const base = Date.now() + 3_600_000;
  const run = (name: string, first: number) =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", `${ROOT}deno.json`, script, path, name, "150", String(first)],
      stdout: "piped",
      stderr: "piped",
    }).output();
  try {
    // a-i expires at base + 10·i, b-i at base + 5 + 10·i: the latest 100 are a-100..149, b-100..149.
    const outs = await Promise.all([run("a", base), run("b", base + 5)]);
    for (const out of outs) assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const kv = await Deno.openKv(path);
    try {
      const ids = (await listRevoked(scopeOf(kv))).map((e) => e.id);
      const want = Array.from({ length: 50 }, (_, i) => [`a-${100 + i}`, `b-${100 + i}`]).flat();
      assert.deepEqual(ids, want);
      assert.equal(await revokedKeys(kv, "t"), 2 * 100 + 1);
    } finally {
      kv.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv revoked: the broker keeps REVOKED_KEPT; a worker started later still skips the newest", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-revoked-kept-" });
  const url = `kv://${dir}/b.sqlite`;
  const extra = 10;
  const base = Date.now() + 3_600_000;
  const entries = Array.from({ length: REVOKED_KEPT + extra }, (_, i) => ({
    id: `r-${i}`,
    expiresAt: new Date(base + i),
  }));
  const broker = await openBroker(url);
  try {
    await broker.addRevoked(entries.slice(0, 20_000));
    await broker.addRevoked(entries.slice(20_000));
    const ids = new Set((await broker.listRevoked()).map((e) => e.id));
    assert.equal(ids.size, REVOKED_KEPT);
    for (let i = 0; i < extra; i++) assert.ok(!ids.has(`r-${i}`), `r-${i} expires first`);
  } finally {
    await broker.close();
  }
  const app = new Celery({ broker: url, backend: url });
  app.task("t.add", (a: number, b: number) => a + b);
  const worker = new Worker({ app, pool: "inline" });
  await worker.start();
  try {
    const newest = entries.at(-1)!.id;
    const r = await app.sendTask("t.add", [1, 2], { taskId: newest });
    assert.equal(
      await r.get({ timeout: 10_000 }).then(() => null, (e) => e.excType),
      "TaskRevokedError",
    );
  } finally {
    await worker.stop();
    await app.close();
    await Deno.remove(dir, { recursive: true });
  }
});
