/**
 * The worker's per-task commands on its own RESP connections (takes,
 * acknowledgements, result stores): scripts by EVALSHA with the NOSCRIPT
 * fallback, transactions, error replies as ioredis reports them, failures to
 * reach the server as BrokerConnectionErrors, and a reply lost in a cut.
 */

import assert from "node:assert/strict";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { parseRedisUrl } from "../src/broker/redis_url.ts";
import { RedisReplyError } from "../src/broker/resp_reader.ts";
import { RedisConnectionError } from "../src/broker/resp_connection.ts";
import {
  commandSettings,
  inTransaction,
  replyTimeoutOf,
  respFailure,
  RespScript,
  RespScripts,
} from "../src/broker/resp_scripts.ts";
import { respStrings } from "../src/broker/resp_strings.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import { reservePorts } from "./helpers/ports.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { deleteKeys, rawRedis, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `RESP scripts: ${name}`, ignore: WITHOUT_REDIS }, fn);

Deno.test("RESP scripts: command connections share their settings, and transactions their framing", () => {
  const url = "redis://:pw@127.0.0.1:6390/2?socket_timeout=5";
  const settings = commandSettings(parseRedisUrl(url), url);
  assert.equal(settings.db, 2);
  assert.equal(settings.maxDelayMs, 500);
  assert.equal(settings.waitForReconnect, true);
  assert.equal(settings.replyTimeoutMs, 5000);
  assert.equal("reconnectWaitMs" in settings, false, "only the next attempt is waited for");
  const plain = "redis://127.0.0.1:6390/0";
  const client = commandSettings(parseRedisUrl(plain), plain, { reconnectWaitMs: 1000 });
  assert.equal(client.replyTimeoutMs, 30_000);
  assert.equal(client.reconnectWaitMs, 1000);
  assert.deepEqual(inTransaction([["INCR", "a"], ["GET", "b"]]), [
    ["MULTI"],
    ["INCR", "a"],
    ["GET", "b"],
    ["EXEC"],
  ]);
});

/** An array reply's elements as text, read from its bytes. */
const texts = (reply: Parameters<typeof respStrings>[0]): string[] => {
  const flat = respStrings(reply);
  return Array.from({ length: flat.length }, (_, k) => flat.text(k));
};

const open = (url = REDIS_URL) =>
  new RespScripts(parseRedisUrl(url), url, { name: "celeriac-test" });

/** A script no server has loaded yet: its first EVALSHA is answered NOSCRIPT. */
const fresh = (body: string) => new RespScript(`-- ${crypto.randomUUID()}\n${body}`);

test("EVALSHA of a script the server lacks falls back to EVAL, which loads it", async () => {
  const prefix = uniquePrefix("resp-scripts");
  const redis = await rawRedis();
  const conn = open();
  const script = fresh("redis.call('INCR', KEYS[1]) return {KEYS[1], ARGV[1], 7}");
  try {
    assert.deepEqual(await redis.script("EXISTS", script.sha), [0]);
    const first = await conn.evalScriptWhole(script, [prefix + "n"], ["é"], texts);
    assert.deepEqual(first, [prefix + "n", "é", "7"]);
    assert.deepEqual(await redis.script("EXISTS", script.sha), [1], "EVAL loaded it");
    await conn.evalScript(script, [prefix + "n"], ["x"]);
    assert.equal(await redis.get(prefix + "n"), "2", "the script ran once per call");
  } finally {
    await conn.close();
    await redis.quit();
    await deleteKeys(prefix);
  }
});

test("a script's error reply has the message ioredis reports, NOSCRIPT or not", async () => {
  const redis = await rawRedis();
  const conn = open();
  try {
    for (const body of ["return redis.error_reply('BOOM it broke')", "return redis.call('NOPE')"]) {
      const script = fresh(body);
      const viaIoredis = await redis.eval(script.lua, 0).then(() => null, (e: Error) => e.message);
      assert.ok(viaIoredis, "ioredis rejects it");
      for (let i = 0; i < 2; i++) { // EVAL (not loaded yet), then EVALSHA
        await assert.rejects(
          conn.evalScript(script, [], []),
          (err: unknown) => err instanceof RedisReplyError && err.message === viaIoredis,
        );
      }
    }
    assert.equal(await conn.evalScript(fresh("return 5"), [], [], Number), 5, "still usable");
  } finally {
    await conn.close();
    await redis.quit();
  }
});

test("a reply the decoder refuses fails its command only, in order", async () => {
  const conn = open();
  try {
    const script = fresh("return ARGV[1] == 'array' and {'a'} or ARGV[1]");
    const got = await Promise.allSettled([
      conn.evalScriptWhole(script, [], ["array"], texts),
      conn.evalScriptWhole(script, [], ["text"], texts),
      conn.evalScriptWhole(fresh("return {'x', {'nested'}}"), [], [], texts),
      conn.evalScriptWhole(script, [], ["array"], texts),
    ]);
    assert.deepEqual(got.map((s) => s.status), ["fulfilled", "rejected", "rejected", "fulfilled"]);
    assert.deepEqual((got[0] as PromiseFulfilledResult<string[]>).value, ["a"]);
    assert.match((got[1] as PromiseRejectedResult).reason.message, /expected an array reply/);
    assert.match((got[2] as PromiseRejectedResult).reason.message, /got an array/);
    assert.deepEqual((got[3] as PromiseFulfilledResult<string[]>).value, ["a"]);
  } finally {
    await conn.close();
  }
});

test("a transaction runs whole; a failing command's error stands in its place", async () => {
  const prefix = uniquePrefix("resp-tx");
  const redis = await rawRedis();
  const conn = open();
  try {
    await redis.zadd(prefix + "z", 1, "a", 2, "b");
    await redis.set(prefix + "s", "x");
    const replies = await conn.transaction([
      ["ZREM", prefix + "z", "a", "c"],
      ["HDEL", prefix + "s", "a"],
      ["ZCARD", prefix + "z"],
    ]);
    assert.equal(replies[0], 1);
    assert.ok(replies[1] instanceof RedisReplyError && replies[1].code === "WRONGTYPE");
    assert.equal(replies[2], 1);
    await assert.rejects(
      conn.transaction([["ZREM", prefix + "z", "b"], ["NOSUCHCOMMAND"]]),
      (err: unknown) => err instanceof RedisReplyError && /unknown command/.test(err.message),
    );
    assert.equal(await redis.zcard(prefix + "z"), 1, "the refused transaction did not run");
    assert.deepEqual(await conn.transaction([["ZCARD", prefix + "z"]]), [1], "still usable");
  } finally {
    await conn.close();
    await redis.quit();
    await deleteKeys(prefix);
  }
});

test("no server, a wrong password, a missing database: BrokerConnectionErrors", async () => {
  using ports = reservePorts();
  const port = ports.base;
  const refused = open(`redis://127.0.0.1:${port}/0`);
  await assert.rejects(
    refused.evalScript(fresh("return 1"), [], []),
    (err: unknown) => err instanceof BrokerConnectionError && err.transient,
  );
  await refused.close();
  const server = await PrivateRedis.start();
  const redis = await rawRedis(server.url);
  try {
    await redis.config("SET", "requirepass", "s3cret");
    const cases: [string, RegExp][] = [
      [`redis://:wrong@127.0.0.1:${server.port}/0`, /password is wrong \(WRONGPASS/],
      [`redis://127.0.0.1:${server.port}/0`, /requires a password and none was given/],
      [`redis://:s3cret@127.0.0.1:${server.port}/99`, /database 99 does not exist/],
    ];
    for (const [url, reason] of cases) {
      const conn = open(url);
      await assert.rejects(
        conn.connect(),
        (err: unknown) =>
          err instanceof BrokerConnectionError && !err.transient && reason.test(err.message),
        url,
      );
      await assert.rejects(conn.transaction([["PING"]]), BrokerConnectionError);
      await conn.close();
    }
  } finally {
    await redis.quit().catch(() => {});
    await server.close();
  }
});

test("a reply lost in a cut fails the call; the next waits for the reconnect", async () => {
  const prefix = uniquePrefix("resp-cut");
  const { proxy, url } = LossyProxy.before(REDIS_URL);
  const redis = await rawRedis();
  const conn = open(url);
  const script = fresh("return redis.call('INCR', KEYS[1])");
  try {
    assert.equal(await conn.evalScript(script, [prefix + "n"], [], Number), 1, "loaded");
    proxy.holdReplies();
    const lost = conn.evalScript(script, [prefix + "n"], [], Number);
    lost.catch(() => {});
    while (await redis.get(prefix + "n") !== "2") await new Promise((r) => setTimeout(r, 10));
    proxy.refuse(true);
    proxy.cut();
    await assert.rejects(lost, BrokerConnectionError, "the script ran, its reply is gone");
    await assert.rejects(
      conn.evalScript(script, [prefix + "n"], [], Number),
      BrokerConnectionError,
      "refused while reconnecting",
    );
    proxy.refuse(false);
    assert.equal(await conn.evalScript(script, [prefix + "n"], [], Number), 3);
  } finally {
    await conn.close();
    proxy.close();
    await redis.quit();
    await deleteKeys(prefix);
  }
});

test("?socket_timeout= bounds the wait for a reply: the waiting call fails", async () => {
  const prefix = uniquePrefix("resp-timeout");
  const { proxy, url } = LossyProxy.before(`${REDIS_URL}?socket_timeout=0.5`);
  const conn = open(url);
  const script = fresh("return redis.call('INCR', KEYS[1])");
  try {
    assert.equal(await conn.evalScript(script, [prefix + "n"], [], Number), 1);
    proxy.holdReplies();
    const waiting = conn.evalScript(script, [prefix + "n"], [], Number);
    waiting.catch(() => {});
    // The default (30 s) would still be waiting when this gives up.
    const timer = new Promise<"still waiting">((res) =>
      setTimeout(() => res("still waiting"), 10_000)
    );
    const outcome = await Promise.race([waiting.then(() => "replied", (e) => e), timer]);
    assert.ok(outcome instanceof BrokerConnectionError, `got ${outcome}`);
  } finally {
    await conn.close();
    proxy.close();
    await deleteKeys(prefix);
  }
});

Deno.test("RESP scripts: ?socket_timeout= is read in seconds; a bad one says what to write", () => {
  const at = (q: string) => {
    const url = `redis://:secret@127.0.0.1:6379/0${q}`;
    return replyTimeoutOf(parseRedisUrl(url), url);
  };
  assert.equal(at(""), undefined);
  assert.equal(at("?socket_timeout=2.5"), 2500);
  assert.equal(at("?socket_timeout=0.0001"), 1);
  for (const bad of ["0", "-1", "abc", "", "Infinity"]) {
    assert.throws(() => at(`?socket_timeout=${bad}`), (e: Error) => {
      assert.equal(e.name, "TypeError");
      assert.match(e.message, /socket_timeout=10/);
      assert.doesNotMatch(e.message, /secret/);
      return true;
    }, bad);
  }
});

Deno.test("RESP scripts: which failures are BrokerConnectionErrors", () => {
  const url = "redis://:secret@127.0.0.1:6379/0";
  const down = [
    new RedisConnectionError("connection to 127.0.0.1:6379 lost: reset"),
    new RedisReplyError("LOADING Redis is loading the dataset in memory"),
  ];
  for (const err of down) {
    const got = respFailure(err, url);
    assert.ok(got instanceof BrokerConnectionError && got.transient && got.cause === err);
    assert.ok(!got.message.includes("secret"), "the password is masked");
  }
  const refused = respFailure(new RedisReplyError("NOAUTH Authentication required."), url);
  assert.ok(refused instanceof BrokerConnectionError && !refused.transient);
  for (const err of [new RedisReplyError("BUSY a script runs"), new TypeError("bad reply")]) {
    assert.equal(respFailure(err, url), err, "command errors pass through");
  }
});
