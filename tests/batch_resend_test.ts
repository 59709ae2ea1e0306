/**
 * A batch send stopped part way (`BatchSendError`) tells each call's outcome
 * by its place in the batch, so a caller can send again exactly the calls
 * that were not sent and check the ones that may have gone.
 */

import assert from "node:assert/strict";
import { BatchSendError, Celery } from "../mod.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";

const decoder = new TextDecoder();
const target = new URL(REDIS_URL);

/** What `queue` holds: [task id, args] per message, in delivery order. */
async function takeAll(app: Celery, queue: string): Promise<[string, unknown][]> {
  const broker = await app.broker();
  const out: [string, unknown][] = [];
  while (true) {
    const got = await broker.take([queue], { max: 100, signal: AbortSignal.timeout(300) });
    if (got.length === 0) return out;
    for (const d of got) out.push([String(d.headers.id), JSON.parse(decoder.decode(d.body))[0]]);
    await broker.ack(got);
  }
}

/** Calls `[i]`, `i` from 0, to `queues` in turn. */
function callsTo(queues: string[]) {
  return queues.map((queue, i) => ({ name: "tests.t", args: [i], options: { queue } }));
}

Deno.test({
  name: "redis: a batch stopped part way tells each call's outcome by its index; sending the " +
    "unsent calls again sends every call once",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("batch-resend");
  const app = new Celery({ broker: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}` });
  const r = await rawRedis(REDIS_URL);
  const good = `batch-ok-${crypto.randomUUID().slice(0, 8)}`;
  const bad = `batch-bad-${crypto.randomUUID().slice(0, 8)}`;
  try {
    // `bad`'s list is a string: Redis refuses its LPUSH (not sent), `good`'s goes through.
    await r.set(`${prefix}${bad}`, "not a list");
    const calls = callsTo([bad, good, good, bad, good, bad, bad]);
    const err = await app.sendMany(calls).then(() => assert.fail("resolved"), (e) => e);
    assert.ok(err instanceof BatchSendError, String(err));
    assert.deepEqual(
      err.outcomes,
      calls.map((c) => c.options.queue === good ? "sent" : "unsent"),
    );
    assert.equal(err.ids.length, calls.length);
    assert.equal(new Set(err.ids).size, calls.length);
    assert.deepEqual(err.sent, err.ids.filter((_, i) => err.outcomes[i] === "sent"));
    assert.deepEqual(err.unsent, err.ids.filter((_, i) => err.outcomes[i] === "unsent"));
    const first = await takeAll(app, good);
    assert.deepEqual(first, [[err.ids[1], [1]], [err.ids[2], [2]], [err.ids[4], [4]]]);

    await r.del(`${prefix}${bad}`);
    const unsent = calls.filter((_, i) => err.outcomes[i] === "unsent");
    const again = await app.sendMany(unsent);
    const second = await takeAll(app, bad);
    assert.deepEqual(second, again.map((res, k) => [res.id, unsent[k].args]));
    assert.deepEqual(await takeAll(app, good), []);
    // Every call went exactly once: the first batch's sent ones, then the unsent ones again.
    const args = [...first, ...second].map(([, a]) => (a as number[])[0]);
    assert.deepEqual(args.sort((a, b) => a - b), calls.map((_, i) => i));
  } finally {
    await app.close();
    r.disconnect();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name:
    "redis: a batch whose LPUSH replies were lost in a cut connection tells its calls unknown, " +
    "by index",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("batch-cut");
  const keyprefix = `global_keyprefix=${encodeURIComponent(prefix)}`;
  let dropReplies = false;
  let dropped = false;
  const proxy = TcpProxy.start(
    { hostname: target.hostname, port: Number(target.port || 6379) },
    {
      // Once armed, what Redis answers is dropped: its replies never reach the app.
      filter: () => (_chunk, upstream) => {
        if (upstream || !dropReplies) return true;
        dropped = true;
        return false;
      },
    },
  );
  const app = new Celery({
    broker: `redis://127.0.0.1:${proxy.port}${target.pathname}?${keyprefix}`,
    taskPublishRetry: false,
  });
  const direct = new Celery({ broker: `${REDIS_URL}?${keyprefix}` });
  const q1 = `batch-cut-a-${crypto.randomUUID().slice(0, 8)}`;
  const q2 = `batch-cut-b-${crypto.randomUUID().slice(0, 8)}`;
  try {
    const calls = callsTo([q1, q2, q1, q2]);
    // Connected, both queues declared: what the batch writes next is its LPUSHes alone.
    await app.sendMany(calls.slice(0, 2));
    assert.equal((await takeAll(direct, q1)).length + (await takeAll(direct, q2)).length, 2);
    dropReplies = true;
    const sending = app.sendMany(calls).then(() => assert.fail("resolved"), (e) => e);
    while (!dropped) await new Promise((ok) => setTimeout(ok, 5));
    await proxy.cut();
    const err = await sending;
    assert.ok(err instanceof BatchSendError, String(err));
    assert.deepEqual(err.outcomes, ["unknown", "unknown", "unknown", "unknown"]);
    assert.deepEqual(err.unknown, err.ids);
    // Checked: Redis had taken every one of them, so none is sent again.
    const taken = [...await takeAll(direct, q1), ...await takeAll(direct, q2)];
    const byArg = (a: [string, unknown], b: [string, unknown]) =>
      (a[1] as number[])[0] - (b[1] as number[])[0];
    assert.deepEqual(taken.sort(byArg), err.ids.map((id, i) => [id, calls[i].args]));
  } finally {
    await app.close();
    await direct.close();
    await proxy.close();
    await deleteKeys(prefix);
  }
});
