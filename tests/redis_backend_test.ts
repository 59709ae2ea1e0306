import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { openRedisBackend } from "../src/backend/redis.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { backendConformance } from "./backend_conformance.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const prefix = uniquePrefix("backend");
const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

backendConformance("redis", () => openRedisBackend(url), WITHOUT_REDIS);

/** How many connections are subscribed to the result channel of `id`. */
async function subscribed(r: Redis, id: string): Promise<number> {
  const [, n] = await r.pubsub("NUMSUB", `${prefix}celery-task-meta-${id}`) as [string, number];
  return n;
}

/** Wait until a connection subscribes to the channel of `id`'s result. */
async function untilSubscribed(r: Redis, id: string): Promise<void> {
  while (await subscribed(r, id) === 0) await new Promise((res) => setTimeout(res, 5));
}

/** A SUCCESS record of `taskId` with `result`, for `backend.store`. */
function success(taskId: string, result: unknown) {
  return {
    taskId,
    status: "SUCCESS" as const,
    meta: encodeResultMeta({ taskId, status: "SUCCESS", result, dateDone: new Date() }),
  };
}

Deno.test({
  name: "redis backend: a replaced meta gets the TTL and is published; a kept SUCCESS is not " +
    "published again; result_expires 0 stores without a TTL, first and replaced",
  ignore: WITHOUT_REDIS,
}, async () => {
  const r = await rawRedis();
  const sub = await rawRedis();
  const heard: string[] = [];
  sub.on("message", (_c: string, m: string) => heard.push(m));
  const meta = (taskId: string, status: "STARTED" | "SUCCESS" | "FAILURE", result: unknown) =>
    encodeResultMeta({ taskId, status, result, dateDone: new Date() });
  for (const expires of [120, 0]) {
    const backend = await openRedisBackend(url, { resultExpires: expires });
    try {
      const id = crypto.randomUUID();
      const key = `${prefix}celery-task-meta-${id}`;
      await sub.subscribe(key);
      heard.length = 0;
      const started = meta(id, "STARTED", { pid: 1, hostname: "h" });
      await backend.store([{ taskId: id, status: "STARTED", meta: started }]);
      await r.persist(key); // a replacement sets the TTL again
      const done = meta(id, "SUCCESS", 7);
      await backend.store([{ taskId: id, status: "SUCCESS", meta: done }]);
      assert.equal(await r.get(key), done);
      const ttl = await r.ttl(key);
      if (expires) assert.ok(ttl > 100 && ttl <= 120, `ttl ${ttl}`);
      else assert.equal(ttl, -1, "no TTL with result_expires 0");
      await backend.store([{ taskId: id, status: "FAILURE", meta: meta(id, "FAILURE", null) }]);
      assert.equal(await r.get(key), done);
      await r.ping(); // the subscriber has had the time to read what was published
      await sub.ping();
      assert.deepEqual(heard, [started, done], "the refused FAILURE is not published");
      await sub.unsubscribe(key);
    } finally {
      await backend.close();
    }
  }
  await r.quit();
  sub.disconnect();
});

Deno.test({
  name: "redis backend: SETEX with result_expires and PUBLISH on the key's channel",
  ignore: WITHOUT_REDIS,
}, async () => {
  const backend = await openRedisBackend(url, { resultExpires: 120 });
  const r = await rawRedis();
  const sub = await rawRedis();
  try {
    const id = crypto.randomUUID();
    const key = `${prefix}celery-task-meta-${id}`;
    const heard = new Promise<string>((resolve) =>
      sub.on("message", (_c: string, m: string) => resolve(m))
    );
    await sub.subscribe(key);
    const meta = encodeResultMeta({
      taskId: id,
      status: "SUCCESS",
      result: 5,
      dateDone: new Date(),
    });
    await backend.store([{ taskId: id, status: "SUCCESS", meta }]);
    assert.equal(await r.get(key), meta);
    const ttl = await r.ttl(key);
    assert.ok(ttl > 100 && ttl <= 120, `ttl ${ttl}`);
    assert.equal(await heard, meta);
  } finally {
    await backend.close();
    await r.quit();
    sub.disconnect();
  }
});

Deno.test({
  name: "redis backend: a waiter survives many results for other tasks and uses one subscriber",
  ignore: WITHOUT_REDIS,
}, async () => {
  const backend = await openRedisBackend(url);
  const r = await rawRedis();
  // Other test files run beside this one on the same server, with subscribers of the same name:
  // the backend's own connection is found by its subscription count, then followed by its id.
  const subscribers = async () =>
    (await r.client("LIST") as string).split("\n").filter((l) =>
      l.includes("name=celeriac-results")
    );
  const until = async <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => {
    for (let i = 0; i < 250; i++) {
      const found = await probe();
      if (found !== undefined) return found;
      await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error(`still waiting after 5 s for ${what}`);
  };
  const id = crypto.randomUUID();
  const waiting = backend.waitFor(id, AbortSignal.timeout(10_000));
  // Waiters are settled by close() if an assertion fails first: that assertion is the failure.
  waiting.catch(() => {});
  try {
    const others = Array.from({ length: 20 }, () => crypto.randomUUID());
    const more = others.map((o) => backend.waitFor(o, AbortSignal.timeout(10_000)));
    for (const m of more) m.catch(() => {});
    const shared = await until("one connection subscribed to all 21 channels", async () => {
      const lines = (await subscribers()).filter((l) => / sub=21 /.test(l));
      return lines.length === 1 ? / id=(\d+) /.exec(` ${lines[0]}`)![1] : undefined;
    });
    await backend.store(others.map((o) => success(o, 0)));
    await Promise.all(more);
    await until("the settled waiters to unsubscribe, the last one staying", async () => {
      const line = (await subscribers()).find((l) => ` ${l}`.includes(` id=${shared} `));
      assert.ok(line, "the shared subscriber connection stays open");
      return / sub=1 /.test(line) ? true : undefined;
    });
    await backend.store([{
      taskId: id,
      status: "FAILURE",
      meta: encodeResultMeta({
        taskId: id,
        status: "FAILURE",
        result: { exc_type: "ValueError", exc_message: ["x"], exc_module: "builtins" },
        dateDone: new Date(),
      }),
    }]);
    assert.equal((await waiting).status, "FAILURE");
  } finally {
    await backend.close();
    await r.quit();
  }
});

Deno.test({
  name: "redis backend: a result of 300 KB published while waited for is heard whole " +
    "(a message over the subscriber's 64 KiB read buffer, split across reads)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const backend = await openRedisBackend(url);
  const r = await rawRedis();
  try {
    const id = crypto.randomUUID();
    const waiting = backend.waitFor(id, AbortSignal.timeout(10_000));
    for (let i = 0; i < 200; i++) {
      const [, n] = await r.pubsub("NUMSUB", backend.key(id)) as [string, number];
      if (n === 1) break;
      await new Promise((res) => setTimeout(res, 10));
    }
    // Multi-byte characters throughout: some straddle the reads' boundaries.
    const result = "é☃𝄞x".repeat(30_000);
    const meta = encodeResultMeta({ taskId: id, status: "SUCCESS", result, dateDone: new Date() });
    // Published only (no key): only the subscription can deliver it.
    assert.equal(await r.publish(backend.key(id), meta), 1);
    assert.equal((await waiting).result, result);
  } finally {
    await backend.close();
    await r.quit();
  }
});

Deno.test({
  name: "redis backend: a settled result's channel is left by the next subscription's write, " +
    "or within 100 ms when none follows",
  ignore: WITHOUT_REDIS,
}, async () => {
  const backend = await openRedisBackend(url);
  const r = await rawRedis();
  const store = (id: string) => backend.store([success(id, 1)]);
  try {
    const [a, b] = [crypto.randomUUID(), crypto.randomUUID()];
    const waitingA = backend.waitFor(a, AbortSignal.timeout(5000));
    // Waiters are rejected by close() if an assertion fails first: that assertion is the failure.
    waitingA.catch(() => {});
    await untilSubscribed(r, a);
    await store(a);
    assert.equal((await waitingA).status, "SUCCESS");
    const waitingB = backend.waitFor(b, AbortSignal.timeout(5000));
    waitingB.catch(() => {});
    await untilSubscribed(r, b);
    assert.equal(await subscribed(r, a), 0, "a's UNSUBSCRIBE went out with b's SUBSCRIBE");
    await store(b);
    assert.equal((await waitingB).status, "SUCCESS");
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(await subscribed(r, b), 0, "b's channel is left without another subscription");
  } finally {
    await backend.close();
    await r.quit();
  }
});

Deno.test({
  name: "redis backend: a result read in the same chunk as its SUBSCRIBE's reply is still left " +
    "by the next subscription's write",
  ignore: WITHOUT_REDIS,
}, async () => {
  // The subscriber's replies are held back by a proxy until the result is published too, so
  // both reach the backend in one read: the waiter is resolved before the SUBSCRIBE's reply is
  // handled, and the caller it wakes subscribes to the next id at once.
  const { proxy, url: via } = LossyProxy.before(url);
  const backend = await openRedisBackend(via);
  const r = await rawRedis();
  try {
    const [a, b] = [crypto.randomUUID(), crypto.randomUUID()];
    await backend.get(a);
    proxy.pauseReplies();
    const waitingA = backend.waitFor(a, AbortSignal.timeout(5000));
    // Rejected by close() when an assertion fails first: that failure is the one reported.
    waitingA.catch(() => {});
    await untilSubscribed(r, a);
    const key = `${prefix}celery-task-meta-${a}`;
    const meta = encodeResultMeta({
      taskId: a,
      status: "SUCCESS",
      result: 1,
      dateDone: new Date(),
    });
    await r.set(key, meta);
    await r.publish(key, meta);
    await new Promise((res) => setTimeout(res, 20));
    proxy.resumeReplies();
    assert.equal((await waitingA).status, "SUCCESS");
    const waitingB = backend.waitFor(b, AbortSignal.timeout(5000));
    waitingB.catch(() => {});
    await untilSubscribed(r, b);
    assert.equal(await subscribed(r, a), 0, "a's UNSUBSCRIBE went out with b's SUBSCRIBE");
  } finally {
    await backend.close();
    await r.quit();
    proxy.close();
  }
});

Deno.test({
  name: "redis backend: a task id waited for again while its channel is being left keeps " +
    "its subscription",
  ignore: WITHOUT_REDIS,
}, async () => {
  const backend = await openRedisBackend(url);
  const r = await rawRedis();
  try {
    const a = crypto.randomUUID();
    // A wait given up while its SUBSCRIBE is under way: its channel is left once that replies,
    // by which time the same id is waited for again (a get() retried after a timeout).
    const giveUp = new AbortController();
    const gone = backend.waitFor(a, giveUp.signal);
    giveUp.abort();
    await assert.rejects(gone);
    const again = backend.waitFor(a, AbortSignal.timeout(5000));
    // Rejected by close() when an assertion fails first: that failure is the one reported.
    again.catch(() => {});
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(await subscribed(r, a), 1, "the new wait's subscription stays");
    await backend.store([success(a, 2)]);
    assert.equal((await again).result, 2);
  } finally {
    await backend.close();
    await r.quit();
  }
});

Deno.test({
  name: "redis backend: a wait given up while the subscriber connects, its channel left, then " +
    "made again before the connect is over, keeps its subscription",
  ignore: WITHOUT_REDIS,
}, async () => {
  // The subscriber's connect is held back by a proxy (a slow TLS connect, a reconnect): the
  // first wait times out, its UNSUBSCRIBE waits for the connect, and the same id is waited for
  // again before it is over (a get() retried after its timeout).
  const { proxy, url: via } = LossyProxy.before(url);
  const backend = await openRedisBackend(via);
  const r = await rawRedis();
  try {
    const a = crypto.randomUUID();
    await backend.get(a); // the store's connection is up, not paused
    proxy.pauseReplies(proxy.accepted); // the next connection: the subscriber's
    await assert.rejects(backend.waitFor(a, AbortSignal.timeout(20)), { name: "TimeoutError" });
    await new Promise((res) => setTimeout(res, 150)); // the channel is left (LEAVE_MS)
    const again = backend.waitFor(a, AbortSignal.timeout(5000));
    // Rejected by close() when an assertion fails first: that failure is the one reported.
    again.catch(() => {});
    proxy.resumeReplies();
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(await subscribed(r, a), 1, "the new wait's subscription stays");
    await backend.store([success(a, 4)]);
    assert.equal((await again).result, 4);
  } finally {
    await backend.close();
    await r.quit();
    proxy.close();
  }
});

Deno.test({
  name: "redis backend: a wait reads its key on the subscriber's connection, right behind its " +
    "SUBSCRIBE (RESP3), not through another connection after the SUBSCRIBE's reply, with a " +
    "plain GETRANGE (no script: its script cost Redis more than the rest of the wait)",
  ignore: WITHOUT_REDIS,
}, async () => {
  // A private server: on the shared one, other test files' commands reach MONITOR too.
  const server = await PrivateRedis.start();
  const backend = await openRedisBackend(server.url);
  const r = await rawRedis(server.url);
  const monitor = await rawRedis(server.url);
  try {
    const id = crypto.randomUUID();
    const key = `celery-task-meta-${id}`;
    const meta = encodeResultMeta({
      taskId: id,
      status: "SUCCESS",
      result: 3,
      dateDone: new Date(),
    });
    await backend.store([{ taskId: id, status: "SUCCESS", meta }]);
    // The subscriber connected first (a connect subscribes to what is waited for in its greeting;
    // that wait may end by the read after the connect, its own read and script load still due):
    // a second wait ends by its read on the subscriber's connection, behind all the first sent.
    for (let i = 0; i < 2; i++) {
      const other = crypto.randomUUID();
      await backend.store([success(other, 0)]);
      await backend.waitFor(other, AbortSignal.timeout(5000));
    }
    // No script to load: after a SCRIPT FLUSH the read is still one command.
    await r.script("FLUSH");
    const reads: { source: string; at: number; cmd: string }[] = [];
    const subscribes: number[] = [];
    let n = 0;
    const m = await monitor.monitor();
    m.on("monitor", (_time: string, args: string[], source: string) => {
      const cmd = args[0]?.toLowerCase();
      const read = ((cmd === "get" || cmd === "getrange") && args[1] === key) ||
        ((cmd === "evalsha" || cmd === "eval") && args[3] === key);
      if (read) reads.push({ source, at: n++, cmd });
      else if (cmd === "subscribe" && args[1] === key) subscribes.push(n++);
    });
    const got = await backend.waitFor(id, AbortSignal.timeout(5000));
    assert.equal(got.result, 3, "a result stored before the wait is read");
    await r.ping();
    await new Promise((ok) => setTimeout(ok, 100));
    m.disconnect();
    const names = new Map<string, string>();
    for (const line of (await r.client("LIST") as string).split("\n")) {
      const addr = / addr=(\S+)/.exec(line)?.[1];
      if (addr) names.set(addr, / name=(\S*)/.exec(line)?.[1] ?? "");
    }
    assert.equal(subscribes.length, 1);
    assert.deepEqual(reads.map((x) => x.cmd), ["getrange"], "read once, by a plain command");
    for (const read of reads) {
      assert.equal(names.get(read.source), "celeriac-results");
      assert.ok(read.at > subscribes[0], "read after the SUBSCRIBE");
    }
  } finally {
    await backend.close();
    monitor.disconnect();
    await r.quit();
    await server.close();
  }
});

Deno.test({
  name: "redis backend: a result over 512 KiB stored before its wait is read on the backend's " +
    "connection: the subscriber's is kept (Redis closes a subscriber over its output buffer limit)",
  ignore: WITHOUT_REDIS,
}, async () => {
  const server = await PrivateRedis.start();
  const backend = await openRedisBackend(server.url);
  const r = await rawRedis(server.url);
  const subscriberId = async () => {
    const lines = (await r.client("LIST") as string).split("\n");
    const line = lines.find((l) => l.includes("name=celeriac-results"));
    return line && / id=(\d+) /.exec(` ${line}`)?.[1];
  };
  try {
    // 1 MB instead of 32 MB: a 2 MB result is over it as a 40 MB one is over the default.
    await r.config("SET", "client-output-buffer-limit", "pubsub 1mb 1mb 60");
    const [small, big] = [crypto.randomUUID(), crypto.randomUUID()];
    const text = "x".repeat(2 * 1024 * 1024);
    await backend.store([success(small, "y".repeat(400 * 1024)), success(big, text)]);
    const smallMeta = await backend.waitFor(small, AbortSignal.timeout(5000));
    assert.equal((smallMeta.result as string).length, 400 * 1024);
    const before = await subscriberId();
    assert.ok(before, "the subscriber is connected");
    const bigMeta = await backend.waitFor(big, AbortSignal.timeout(5000));
    assert.equal(bigMeta.result, text);
    await r.ping();
    assert.equal(await subscriberId(), before, "the subscriber's connection is kept");
  } finally {
    await backend.close();
    await r.quit();
    await server.close();
  }
});

Deno.test({
  name:
    "redis backend: a server without HELLO (Redis < 6, a proxy): the subscriber speaks RESP2, " +
    "a wait reads its key after the SUBSCRIBE's reply and hears what is published",
  ignore: WITHOUT_REDIS,
}, async () => {
  const server = await PrivateRedis.start(["--rename-command", "HELLO", ""]);
  const backend = await openRedisBackend(server.url);
  const r = await rawRedis(server.url);
  try {
    const [before, after] = [crypto.randomUUID(), crypto.randomUUID()];
    await backend.store([success(before, 5)]);
    assert.equal((await backend.waitFor(before, AbortSignal.timeout(5000))).result, 5);
    const waiting = backend.waitFor(after, AbortSignal.timeout(5000));
    // Rejected by close() when an assertion fails first: that failure is the one reported.
    waiting.catch(() => {});
    const key = `celery-task-meta-${after}`;
    while ((await r.pubsub("NUMSUB", key) as [string, number])[1] === 0) {
      await new Promise((res) => setTimeout(res, 5));
    }
    await backend.store([success(after, 6)]);
    assert.equal((await waiting).result, 6);
  } finally {
    await backend.close();
    await r.quit();
    await server.close();
  }
});

Deno.test({
  name: "redis backend: a second wait for a task already waited for is first told the state " +
    "stored when it begins, not the one read when the first wait subscribed",
  ignore: WITHOUT_REDIS,
}, async () => {
  const backend = await openRedisBackend(url);
  const id = crypto.randomUUID();
  const stored = (status: "STARTED" | "PROGRESS" | "SUCCESS") => ({
    taskId: id,
    status,
    meta: encodeResultMeta({ taskId: id, status, result: status, dateDone: new Date() }),
  });
  const heard = (into: string[]) => (meta: { status: string }) => into.push(meta.status);
  const until = async (what: string, done: () => boolean) => {
    for (let i = 0; i < 250 && !done(); i++) await new Promise((res) => setTimeout(res, 20));
    assert.ok(done(), `still waiting after 5 s for ${what}`);
  };
  try {
    await backend.store([stored("STARTED")]);
    const [first, second]: string[][] = [[], []];
    const a = backend.waitFor(id, AbortSignal.timeout(5000), heard(first));
    // Rejected by close() when an assertion fails first: that failure is the one reported.
    a.catch(() => {});
    await until("the first wait's read", () => first.length === 1);
    await backend.store([stored("PROGRESS")]);
    await until("the first wait to hear PROGRESS", () => first.length === 2);
    const b = backend.waitFor(id, AbortSignal.timeout(5000), heard(second));
    b.catch(() => {});
    await until("the second wait's first state", () => second.length === 1);
    await backend.store([stored("SUCCESS")]);
    assert.deepEqual([(await a).status, (await b).status], ["SUCCESS", "SUCCESS"]);
    assert.deepEqual(first, ["STARTED", "PROGRESS"]);
    assert.deepEqual(second, ["PROGRESS"], "the state stored when the second wait began");
  } finally {
    await backend.close();
  }
});

Deno.test({ name: "redis backend: clean up test keys", ignore: WITHOUT_REDIS }, async () => {
  await deleteKeys(prefix);
});
