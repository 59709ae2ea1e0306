/**
 * Claim lists (src/broker/redis_claims.ts): a message a worker claimed but
 * never took (it died in between) goes back to the front of its queue.
 */

import assert from "node:assert/strict";
import { openRedisBroker } from "../src/broker/redis.ts";
import {
  claimedList,
  claimList,
  CLAIMS_KEY,
  ClaimWatcher,
  respClaimLink,
} from "../src/broker/redis_claims.ts";
import { rotatedLists, takeOrder } from "../src/broker/redis_keys.ts";
import { parseRedisUrl } from "../src/broker/redis_url.ts";
import { RespConnection, type RespConnectionOptions } from "../src/broker/resp_connection.ts";
import { respOptions } from "../src/broker/resp_scripts.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import { RedisMonitor } from "../tools/redis_monitor.ts";
import { message, uniqueQueue } from "./broker_conformance.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

/** A connection to the tests' Redis server as the broker opens its watchers. */
function respConn(name: string, o: Partial<RespConnectionOptions> = {}): RespConnection {
  return new RespConnection({
    ...respOptions(parseRedisUrl(REDIS_URL), REDIS_URL),
    name,
    waitForReconnect: true,
    maxDelayMs: 100,
    replyTimeoutMs: 30_000,
    ...o,
  });
}

Deno.test("redis claims: a claim list names its queue list", () => {
  const name = claimList("abc123", "q|odd\x06\x163");
  assert.equal(name, "celeriac.claim.abc123|q|odd\x06\x163");
  assert.equal(claimedList(name), "q|odd\x06\x163");
  assert.equal(claimedList("unacked"), null);
});

Deno.test("redis claims: a take reads claims and queues step by step, most urgent first", () => {
  const lists = rotatedLists(["a", "b"], 1);
  const read = (first: string | null) =>
    takeOrder(lists, first).map(([l, claim]) =>
      (claim ? "claim:" : "") + l.replace("\x06\x16", "/")
    );
  assert.deepEqual(read(null), [
    ...["claim:b", "claim:a", "b", "a"],
    ...["claim:b/3", "claim:a/3", "b/3", "a/3"],
    ...["claim:b/6", "claim:a/6", "b/6", "a/6"],
    ...["claim:b/9", "claim:a/9", "b/9", "a/9"],
  ]);
  // An early hand-out's claim list first (its take surely takes it), read once.
  assert.deepEqual(read("a\x06\x166").slice(0, 10), [
    ...["claim:a/6", "claim:b", "claim:a", "b", "a"],
    ...["claim:b/3", "claim:a/3", "b/3", "a/3", "claim:b/6"],
  ]);
  assert.equal(read("a\x06\x166").filter((l) => l === "claim:a/6").length, 1);
  assert.deepEqual(takeOrder([], "a"), [["a", true]]);
});

Deno.test({
  name: "redis claims: a message claimed by a worker that died comes back and is taken",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("claims");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const q = uniqueQueue("claims");
  const publisher = await openRedisBroker(url);
  const r = await rawRedis();
  try {
    // A dead worker's claim: the message moved to its claim list 100 s ago.
    await publisher.publish(message("orphan"), { routingKey: q });
    const dead = claimList("dead0000", q);
    assert.ok(await r.lmove(`${prefix}${q}`, `${prefix}${dead}`, "RIGHT", "LEFT"));
    await r.zadd(`${prefix}${CLAIMS_KEY}`, Date.now() / 1000 - 100, dead);
    const consumer = await openRedisBroker(url);
    try {
      const got = await consumer.take([q], { max: 10, signal: AbortSignal.timeout(10_000) });
      assert.equal(got.length, 1);
      assert.equal(JSON.parse(new TextDecoder().decode(got[0].body)), "orphan");
      await consumer.ack(got);
      assert.equal(await r.llen(`${prefix}${dead}`), 0);
      assert.equal(await r.zscore(`${prefix}${CLAIMS_KEY}`, dead), null);
    } finally {
      await consumer.close();
    }
  } finally {
    await publisher.close();
    await r.quit();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "redis claims: a waiter renews its claim before its first wait, then only once " +
    "renewEvery has passed, and again after a failed renewal",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("claim-renew");
  const list = `${prefix}q`;
  const conn = respConn("celeriac-watch");
  const r = await rawRedis();
  const link = respClaimLink(conn, list, `${prefix}claim`, `${prefix}${CLAIMS_KEY}`, "claim");
  const renewals = (every: number, fail = false) => {
    const sent: number[] = [];
    const watcher = new ClaimWatcher({
      ...link,
      renew: () => {
        sent.push(1);
        return fail && sent.length === 1 ? Promise.reject(new Error("cut")) : link.renew();
      },
    }, every);
    return { sent, watcher };
  };
  const claimOne = async (w: ClaimWatcher) => {
    await r.lpush(list, "m");
    return await w.wait();
  };
  try {
    const lazy = renewals(60_000);
    assert.equal(await claimOne(lazy.watcher), true);
    assert.equal(await claimOne(lazy.watcher), true);
    assert.equal(await claimOne(lazy.watcher), true);
    assert.equal(lazy.sent.length, 1, "renewed before the first wait only");
    const eager = renewals(0);
    await claimOne(eager.watcher);
    await claimOne(eager.watcher);
    assert.equal(eager.sent.length, 2, "renewed before every wait");
    const failing = renewals(60_000, true);
    assert.equal(await claimOne(failing.watcher), false, "a wait whose renewal failed");
    assert.equal(await claimOne(failing.watcher), true);
    assert.equal(failing.sent.length, 2, "the failed renewal was sent again");
    assert.equal(await r.llen(`${prefix}claim`), 7, "every wait claimed its message");
    assert.ok(Number(await r.zscore(`${prefix}${CLAIMS_KEY}`, "claim")) > Date.now() / 1000 - 60);
  } finally {
    await conn.close();
    await r.quit();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "redis claims: a RESP watcher claims the element as UTF-8 text, and times out after 1 s",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("claim-resp");
  const list = `${prefix}q`;
  const conn = respConn("celeriac-watch");
  const r = await rawRedis();
  const watcher = new ClaimWatcher(
    respClaimLink(conn, list, `${prefix}claim`, `${prefix}${CLAIMS_KEY}`, "claim"),
  );
  try {
    await r.lpush(list, "naïve ☃");
    assert.equal(await watcher.wait(7), true);
    assert.deepEqual(watcher.takeClaimed(), { raw: "naïve ☃", epoch: 7 });
    assert.equal(watcher.takeClaimed(), null, "handed over once");
    assert.deepEqual(await r.lrange(`${prefix}claim`, 0, -1), ["naïve ☃"]);
    // Its block of 1 s: not before 0.9 s, and before a block of 2 s begun with it on another
    // connection ends (an order, not a time: a loaded machine slows both).
    const control = await rawRedis();
    const blocked = control.blpop(`${prefix}nothing`, 2).then(() => "the 2 s block");
    const t0 = performance.now();
    const waited = watcher.wait().then((claimed) => ({ claimed, ms: performance.now() - t0 }));
    const first = await Promise.race([waited.then(() => "the wait"), blocked]);
    assert.equal(first, "the wait", "the wait ended before a 2 s block begun with it");
    const { claimed, ms } = await waited;
    assert.equal(claimed, false, "nothing to claim");
    assert.ok(ms >= 900, `waited ${ms} ms`);
    await blocked;
    await control.quit();
    assert.equal(watcher.claims, 1);
  } finally {
    watcher.close();
    await r.quit();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "redis claims: closing a RESP watcher ends its blocked wait at once",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("claim-close");
  const name = `celeriac-watch-${crypto.randomUUID().slice(0, 8)}`;
  const conn = respConn(name);
  const r = await rawRedis();
  const watcher = new ClaimWatcher(
    respClaimLink(conn, `${prefix}q`, `${prefix}claim`, `${prefix}${CLAIMS_KEY}`, "claim"),
  );
  try {
    await conn.connect();
    assert.ok((await r.client("LIST") as string).includes(`name=${name} `));
    const waiting = watcher.wait();
    await new Promise((res) => setTimeout(res, 100));
    // At once: before a block of 0.5 s on another connection, begun with the close, ends (the
    // wait's own block of 1 s would end 0.9 s after it, or sooner if the sleep ran long). An
    // order, not a time: a loaded machine slows both.
    const control = await rawRedis();
    const blocked = control.blpop(`${prefix}nothing`, 0.5).then(() => "the 0.5 s block");
    watcher.close();
    const first = await Promise.race([waiting.then(() => "the wait"), blocked]);
    assert.equal(first, "the wait", "the wait ended before a 0.5 s block begun with the close");
    assert.equal(await waiting, false);
    await blocked;
    await control.quit();
    assert.equal(conn.state, "closed");
    // The server sees no connection of it any more (nothing waits there for its block to end).
    const gone = async () => !(await r.client("LIST") as string).includes(`name=${name} `);
    for (let i = 0; i < 50 && !(await gone()); i++) await new Promise((res) => setTimeout(res, 10));
    assert.ok(await gone(), "its connection is closed on the server");
  } finally {
    watcher.close();
    await r.quit();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "redis claims: a RESP watcher whose connection drops waits again once it is back",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("claim-cut");
  const list = `${prefix}q`;
  const target = parseRedisUrl(REDIS_URL);
  const proxy = LossyProxy.start({ hostname: target.host, port: target.port });
  const conn = respConn("celeriac-watch", { host: "127.0.0.1", port: proxy.port });
  const r = await rawRedis();
  const watcher = new ClaimWatcher(
    respClaimLink(conn, list, `${prefix}claim`, `${prefix}${CLAIMS_KEY}`, "claim"),
  );
  try {
    await conn.connect();
    const waiting = watcher.wait();
    await new Promise((res) => setTimeout(res, 100));
    proxy.refuse(true);
    proxy.cut();
    assert.equal(await waiting, false, "the wait under way fails with the connection");
    // Sent while the connection is down: it waits for a reconnect attempt.
    const again = watcher.wait();
    await new Promise((res) => setTimeout(res, 300));
    proxy.refuse(false);
    let claimed = await again;
    await r.lpush(list, "after the cut");
    while (!claimed) claimed = await watcher.wait();
    assert.deepEqual(watcher.takeClaimed()?.raw, "after the cut");
    assert.equal(await r.llen(list), 0);
  } finally {
    watcher.close();
    proxy.close();
    await r.quit();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "redis claims: a broker closing while its take is blocked closes at once; " +
    "what is published afterwards stays in the queue",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("claims-close");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const q = uniqueQueue("claims-close");
  const consumer = await openRedisBroker(url);
  const publisher = await openRedisBroker(url);
  const r = await rawRedis();
  try {
    const stop = new AbortController();
    const taking = consumer.take([q], { max: 10, signal: stop.signal });
    // The take script found nothing: a watcher per list of the queue registered its claim and blocks.
    const claims = `${prefix}${CLAIMS_KEY}`;
    for (let i = 0; i < 100 && await r.zcard(claims) < 4; i++) {
      await new Promise((res) => setTimeout(res, 10));
    }
    assert.equal(await r.zcard(claims), 4, "one claim per priority list");
    await new Promise((res) => setTimeout(res, 100));
    stop.abort();
    assert.deepEqual(await taking, []);
    const t0 = performance.now();
    await consumer.close();
    const took = performance.now() - t0;
    assert.ok(took < 500, `closed in ${took} ms`);
    await publisher.publish(message("later"), { routingKey: q });
    assert.equal(await r.llen(`${prefix}${q}`), 1, "no wait of the closed broker claimed it");
    // Kept registered: a sweep returns what a wait the server saw closed late still claimed.
    assert.equal(await r.zcard(claims), 4, "its claims stay registered until a sweep");
  } finally {
    await publisher.close();
    await r.quit();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "redis claims: a message published right after a closing broker returned its claims " +
    "is not claimed by its blocked wait (it stays in the queue)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("claims-close-race");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const r = await rawRedis();
  const publisher = await rawRedis();
  const monitor = await RedisMonitor.open(REDIS_URL);
  // This round's claims: the set also holds earlier rounds' (a closing broker keeps its own
  // registered), so its size says nothing about whether this round's waits were sent.
  const claimsOf = async (q: string) => {
    const lists = new Set(rotatedLists([q], 0));
    const members = await r.zrange(`${prefix}${CLAIMS_KEY}`, "0", "-1");
    return members.filter((m) => lists.has(claimedList(m) ?? "")).length;
  };
  try {
    // Several rounds: the wait's socket must be closed before the return script is sent, or
    // a publish in between fills a claim list no longer registered (lost for good).
    for (let round = 0; round < 5; round++) {
      const q = uniqueQueue("claims-close-race");
      const consumer = await openRedisBroker(url);
      const stop = new AbortController();
      const taking = consumer.take([q], { max: 10, signal: stop.signal });
      // The take script found nothing: its waits registered their claims and block.
      for (let i = 0; i < 500 && await claimsOf(q) < 4; i++) {
        await new Promise((res) => setTimeout(res, 10));
      }
      assert.equal(await claimsOf(q), 4, `round ${round}: one claim per priority list`);
      stop.abort();
      assert.deepEqual(await taking, []);
      // Published as soon as the server ran the script returning the queue's claim.
      let published: Promise<number> | null = null;
      const stopWatching = monitor.on((args) => {
        if (published === null && /^eval/i.test(args[0]) && args.some((a) => a.endsWith(`|${q}`))) {
          published = publisher.lpush(`${prefix}${q}`, `round ${round}`);
        }
      });
      await consumer.close();
      for (let i = 0; i < 100 && published === null; i++) {
        await new Promise((res) => setTimeout(res, 10));
      }
      stopWatching();
      assert.ok(published !== null, "the return script ran");
      await published;
      await new Promise((res) => setTimeout(res, 50));
      assert.deepEqual(await r.keys(`${prefix}celeriac.claim.*`), [], `round ${round}: no claim`);
      assert.deepEqual(await r.lrange(`${prefix}${q}`, 0, -1), [`round ${round}`]);
    }
  } finally {
    await monitor.close();
    await publisher.quit();
    await r.quit();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "redis claims: a RESP wait that cannot reach Redis reports it after a pause " +
    "(a taker does not spin), at once when the watcher closes",
  ignore: WITHOUT_REDIS,
}, async () => {
  const target = parseRedisUrl(REDIS_URL);
  const proxy = LossyProxy.start({ hostname: target.host, port: target.port });
  proxy.refuse(true);
  const conn = respConn("celeriac-watch", { host: "127.0.0.1", port: proxy.port });
  const watcher = new ClaimWatcher(respClaimLink(conn, "q", "claim", CLAIMS_KEY, "claim"));
  try {
    let t0 = performance.now();
    assert.equal(await watcher.wait(), false);
    const paused = performance.now() - t0;
    assert.ok(paused >= 90, `reported after ${paused} ms`);
    const waiting = watcher.wait();
    await new Promise((res) => setTimeout(res, 20));
    t0 = performance.now();
    watcher.close();
    assert.equal(await waiting, false);
    const took = performance.now() - t0;
    assert.ok(took < 50, `reported ${took} ms after close`);
  } finally {
    watcher.close();
    proxy.close();
  }
});

Deno.test({
  name: "redis claims: a message whose BLMOVE reply a drop lost is taken from the claim list " +
    "once the connection is back",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("claims-lost-reply");
  const query = `?global_keyprefix=${encodeURIComponent(prefix)}`;
  const { proxy, url } = LossyProxy.before(`${REDIS_URL}${query}`);
  const consumer = await openRedisBroker(url);
  const publisher = await openRedisBroker(`${REDIS_URL}${query}`);
  const r = await rawRedis();
  const q = uniqueQueue("claims-lost-reply");
  try {
    const taking = consumer.take([q], { max: 10, signal: AbortSignal.timeout(10_000) });
    for (let i = 0; i < 100 && await r.zcard(`${prefix}${CLAIMS_KEY}`) < 4; i++) {
      await new Promise((res) => setTimeout(res, 10));
    }
    proxy.holdReplies();
    await publisher.publish(message("claimed unheard"), { routingKey: q });
    // The wait claimed it on the server; its reply is lost with the connection.
    const claimLists = () => r.keys(`${prefix}celeriac.claim.*`);
    for (let i = 0; i < 100 && (await claimLists()).length === 0; i++) {
      await new Promise((res) => setTimeout(res, 10));
    }
    assert.equal((await claimLists()).length, 1, "claimed into the claim list");
    proxy.cut();
    const got = await taking;
    assert.deepEqual(got.map((d) => JSON.parse(new TextDecoder().decode(d.body))), [
      "claimed unheard",
    ]);
    await consumer.ack(got);
    assert.deepEqual(await claimLists(), []);
    assert.equal(await r.llen(`${prefix}${q}`), 0);
  } finally {
    await consumer.close();
    await publisher.close();
    proxy.close();
    await r.quit();
    await deleteKeys(prefix);
  }
});

/**
 * A TCP proxy whose server side outlives its client side by `lingerMs`: a connection the client
 * closed is still open at the server for a while, as when its close travels slower than a
 * command sent next on another connection (the server runs that command first).
 */
function lingeringProxy(lingerMs: number) {
  const target = parseRedisUrl(REDIS_URL);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const close = (c: Deno.Conn) => {
    if (!open.delete(c)) return;
    try {
      c.close();
    } catch {
      // closed already
    }
  };
  const pipe = async (from: Deno.Conn, to: Deno.Conn, linger: number) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        for (let off = 0; off < n;) off += await to.write(buf.subarray(off, n));
      }
    } catch {
      // closed
    }
    if (linger > 0) await new Promise((res) => setTimeout(res, linger));
    close(from);
    close(to);
  };
  (async () => {
    try {
      for await (const client of listener) {
        const server = await Deno.connect({ hostname: target.host, port: target.port });
        open.add(client).add(server);
        pipe(client, server, lingerMs);
        pipe(server, client, 0);
      }
    } catch {
      // listener closed
    }
  })();
  return {
    port: listener.addr.port,
    close: () => {
      listener.close();
      for (const c of [...open]) close(c);
    },
  };
}

Deno.test({
  name: "redis claims: a message a closing broker's wait claims after its claims were " +
    "returned (the server saw the wait's close late) is not lost: a sweep returns it",
  ignore: WITHOUT_REDIS,
}, async () => {
  const prefix = uniquePrefix("claims-late");
  const query = `?global_keyprefix=${encodeURIComponent(prefix)}`;
  const proxy = lingeringProxy(600);
  const q = uniqueQueue("claims-late");
  const r = await rawRedis();
  const consumer = await openRedisBroker(`redis://127.0.0.1:${proxy.port}/0${query}`);
  const other = await openRedisBroker(`${REDIS_URL}${query}`, { restoreInterval: 0.3 });
  try {
    const stop = new AbortController();
    const taking = consumer.take([q], { max: 10, signal: stop.signal });
    const claims = `${prefix}${CLAIMS_KEY}`;
    for (let i = 0; i < 100 && await r.zcard(claims) < 4; i++) {
      await new Promise((res) => setTimeout(res, 10));
    }
    stop.abort();
    await taking;
    await consumer.close();
    // Its waits are still blocked at the server, which has not seen their connections close.
    await other.publish(message("late"), { routingKey: q });
    await new Promise((res) => setTimeout(res, 100));
    const where = await r.keys(`${prefix}celeriac.claim.*`);
    // However it went, the message reaches a worker: a claim kept registered goes back to its
    // queue once its lease is over (made so here).
    for (const m of await r.zrange(claims, "0", "-1")) await r.zadd(claims, 0, m);
    const got = await other.take([q], { max: 10, signal: AbortSignal.timeout(3000) });
    assert.equal(got.length, 1, `the message is lost (claim lists ${where})`);
    await other.ack(got);
  } finally {
    await other.close();
    await consumer.close();
    proxy.close();
    await r.quit();
    await deleteKeys(prefix);
  }
});
