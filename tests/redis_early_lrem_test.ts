import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { openRedisBroker } from "../src/broker/redis.ts";
import { RespScripts } from "../src/broker/resp_scripts.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

// A lone early hand-out acknowledged before its take script ran is acknowledged with an LREM of
// its claim (redis_take.ts). These cover the LREM's edges: a claim whose text is not its bytes
// (not valid UTF-8), an LREM that ran but whose reply was lost, and one that never ran.

/** A broker of its own prefix, a queue and a raw connection. */
async function waitingBroker(name: string) {
  const p = uniquePrefix(name);
  const broker = await openRedisBroker(`${REDIS_URL}?global_keyprefix=${encodeURIComponent(p)}`);
  return { p, q: uniqueQueue(name), broker, r: await rawRedis() };
}

/**
 * Intercept every `LREM` on a RESP connection: `"ran"` runs it, then fails it with a connection
 * error (its reply lost); `"unsent"` fails it unsent; `"missed"` answers 0 unsent (as if it
 * matched nothing); `"pass"` runs it. Returns the restore function and a count of LREMs seen.
 */
function interceptLrem(
  mode: "ran" | "unsent" | "missed" | "pass",
): { restore(): void; seen(): number } {
  const orig = RespScripts.prototype.command;
  let seen = 0;
  RespScripts.prototype.command = async function <T>(
    this: RespScripts,
    args: readonly string[],
    decode: (reply: unknown) => T,
  ): Promise<T> {
    if (args[0] !== "LREM") return await orig.call(this, args, decode) as T;
    seen++;
    if (mode === "pass") return await orig.call(this, args, decode) as T;
    if (mode === "missed") return decode(0);
    if (mode === "ran") await orig.call(this, args, decode);
    throw new BrokerConnectionError(REDIS_URL, new Error("Connection is closed."));
  } as typeof orig;
  return { restore: () => RespScripts.prototype.command = orig, seen: () => seen };
}

/** How many elements the prefix's claim lists hold. */
async function claimed(r: Awaited<ReturnType<typeof rawRedis>>, p: string): Promise<number> {
  let left = 0;
  for (const k of await r.keys(`${p}celeriac.claim.*`)) {
    if ((await r.type(k)) === "list") left += await r.llen(k);
  }
  return left;
}

Deno.test({
  name: "redis early hand-out acknowledged at intake whose element is not valid UTF-8: " +
    "acknowledged once, not handed out again",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-lrem-bin");
  const scratch = q + "-scratch";
  const lrem = interceptLrem("pass");
  try {
    await broker.publish(message("bin"), { routingKey: scratch });
    const env = JSON.parse((await r.lpop(`${p}${scratch}`))!);
    env.headers = { ...env.headers, note: "__BIN__" };
    const [a, b] = JSON.stringify(env).split("__BIN__");
    const raw = Buffer.concat([Buffer.from(a), Buffer.from([0xff]), Buffer.from(b)]);
    const taking = broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
    await new Promise((res) => setTimeout(res, 20));
    await r.lpush(`${p}${q}`, raw);
    const got = await taking;
    assert.equal(got.length, 1);
    await broker.ack(got);
    assert.equal(await claimed(r, p), 0, "nothing left in the claim lists");
    assert.equal(await r.hlen(`${p}unacked`), 0);
    const again = await broker.take([q], { max: 10, signal: AbortSignal.timeout(1500) });
    assert.deepEqual(again.map((d) => d.deliveryTag), [], "not handed out again");
    assert.equal(lrem.seen(), 0, "no LREM of a text that is not its bytes");
  } finally {
    lrem.restore();
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

Deno.test({
  name: "redis early hand-out acknowledged at intake, its LREM removing nothing: " +
    "the take script records it, acknowledged once, not handed out again",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { p, q, broker, r } = await waitingBroker("early-lrem-missed");
  const lrem = interceptLrem("missed");
  try {
    const taking = broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
    await new Promise((res) => setTimeout(res, 20));
    await broker.publish(message("missed"), { routingKey: q });
    const got = await taking;
    assert.equal(got.length, 1);
    await broker.ack(got);
    assert.equal(lrem.seen(), 1, "acknowledged with an LREM");
    assert.equal(await claimed(r, p), 0, "nothing left in the claim lists");
    assert.equal(await r.hlen(`${p}unacked`), 0);
    const again = await broker.take([q], { max: 10, signal: AbortSignal.timeout(1500) });
    assert.deepEqual(again.map((d) => d.deliveryTag), [], "not handed out again");
  } finally {
    lrem.restore();
    await broker.close();
    await deleteKeys(p);
    await r.quit();
  }
});

for (const ran of [true, false]) {
  Deno.test({
    name: `redis early hand-out acknowledged at intake, its LREM ${
      ran ? "run but unanswered" : "never sent"
    }, then rejected: parked and reported parked`,
    ignore: WITHOUT_REDIS,
  }, async () => {
    const { p, q, broker, r } = await waitingBroker("early-lrem-lost");
    const lrem = interceptLrem(ran ? "ran" : "unsent");
    try {
      const taking = broker.take([q], { max: 10, signal: AbortSignal.timeout(5000) });
      await new Promise((res) => setTimeout(res, 20));
      await broker.publish(message("refused"), { routingKey: q });
      const got = await taking;
      assert.equal(got.length, 1);
      await broker.ack(got);
      assert.equal(lrem.seen(), 1, "acknowledged with an LREM");
      const rejection = {
        delivery: got[0],
        reason: "refused content type",
        taskId: "t1",
        taskName: "x",
      };
      const written = await broker.reject([rejection]);
      assert.deepEqual(written.map((w) => w.delivery), got, "reported parked");
      assert.equal(await broker.countParked(), 1, "parked once");
      assert.equal(await r.llen(`${p}${q}`), 0);
      assert.equal(await r.hlen(`${p}unacked`), 0);
    } finally {
      lrem.restore();
      await broker.close();
      await deleteKeys(p);
      await r.quit();
    }
  });
}
