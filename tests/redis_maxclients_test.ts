/**
 * A Redis server at `maxclients` refuses the worker's waiting connections
 * (`celeriac-watch`, one per queue list): the watchers back off, 50 ms
 * doubling to 2 s, instead of reconnecting in a tight loop, and the cause is
 * logged once at warning level with what to change; once every watcher waits
 * again an info line says so, and a later episode is warned about again.
 * Connections dropped and refused when they reconnect (the usual case) are
 * warned about once an outage, with what to change; a connect refused is a
 * connection failure (a take rides it out), not the server's error reply.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { openRedisBroker } from "../src/broker/redis.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { rawRedis } from "./helpers/redis.ts";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { RedisConnectionError, RespConnection } from "../src/broker/resp_connection.ts";
import { respFailure } from "../src/broker/resp_scripts.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

/** A field of `INFO section` as a number. */
async function info(r: Awaited<ReturnType<typeof rawRedis>>, section: string, field: string) {
  const text = await r.info(section);
  return Number(text.match(new RegExp(`^${field}:(\\d+)`, "m"))?.[1]);
}

/** Until `done` holds of the log lines `lines()` gives (20 s at most: a guard, not a measure). */
async function until(lines: () => string[], what: string, done: (ls: string[]) => boolean) {
  for (const end = Date.now() + 20_000; !done(lines());) {
    if (Date.now() > end) throw new Error(`never ${what}:\n${lines().join("\n")}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

/**
 * A private Redis server with a broker on it, its log lines captured, and a raw client to it;
 * `close` stops the capture, lifts `maxclients` again and closes all three.
 */
async function openPrivate() {
  const server = await PrivateRedis.start();
  const raw = await rawRedis(server.url);
  const records = await captureLogs("debug", ["celeriac", "broker", "redis"]);
  const broker = await openRedisBroker(server.url);
  const lines = () => records.map(logLine);
  const close = async () => {
    await reset();
    await raw.config("SET", "maxclients", "10000");
    await broker.close();
    raw.disconnect();
    await server.close();
  };
  return { raw, broker, lines, close };
}

Deno.test({
  name: "redis maxclients: refused waits back off and are warned about once, naming the cause",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { raw, broker, lines, close } = await openPrivate();
  const take = new AbortController();
  try {
    const queues = ["m1", "m2", "m3", "m4", "m5"];
    for (const q of queues) await broker.declareQueue(q);
    assert.equal(await broker.queueDepth("m1"), 0);
    // Room for two more connections: 18 of the 20 watchers (4 lists per queue) are refused.
    const connected = await info(raw, "clients", "connected_clients");
    await raw.config("SET", "maxclients", String(connected + 2));
    await raw.config("RESETSTAT");
    const taking = broker.take(queues, { max: 1, signal: take.signal });
    const retries = () =>
      lines().filter((l) => l.includes("Cannot wait for messages")).map((l) =>
        Number(l.match(/retrying in (\d+) ms/)?.[1])
      );
    let rejected = 0;
    // Until some watcher has failed seven times in a row (its retry grew to 2 s: 18 watchers
    // refused 126 connections), or the server refused far more connections than that: before,
    // a failed wait was sent again at once (1,000 refused within 4 s) and nothing was logged.
    while (!retries().includes(2000) && rejected < 1000) {
      await new Promise((ok) => setTimeout(ok, 50));
      rejected = await info(raw, "stats", "rejected_connections");
    }
    take.abort();
    await taking;
    assert.ok(rejected > 0, "the server refused no connection: the test set no limit");
    assert.ok(rejected < 8 * 20 + 40, `${rejected} connections refused`);
    assert.ok(retries().includes(50) && retries().includes(1600), String(retries()));
    const warnings = lines().filter((l) => l.startsWith("warning "));
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0], /max number of clients reached/);
    assert.match(warnings[0], /Raise its maxclients .* or consume fewer queues/);
  } finally {
    take.abort();
    await close();
  }
});

Deno.test({
  name: "redis maxclients: each episode of refused waits is warned about once, its end logged",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { raw, broker, lines, close } = await openPrivate();
  const take = new AbortController();
  const refused = (ls: string[]) =>
    ls.filter((l) => l.includes("Cannot wait for messages") && /max number of clients/.test(l));
  /** Room for two more connections: two of a queue's four new watchers are refused. */
  const roomForTwo = async () => {
    const connected = await info(raw, "clients", "connected_clients");
    await raw.config("SET", "maxclients", String(connected + 2));
  };
  try {
    await broker.declareQueue("e1");
    assert.equal(await broker.queueDepth("e1"), 0);
    await roomForTwo();
    const taking = broker.take(["e1"], { max: 1, signal: take.signal });
    await until(lines, "refused", (ls) => refused(ls).length >= 4);
    await raw.config("SET", "maxclients", "10000");
    await until(
      lines,
      "recovered",
      (ls) => ls.some((l) => l.includes("Waiting for messages again")),
    );
    take.abort();
    await taking;
    // A second episode: another queue's watchers refused (a consumer added at maxclients).
    const first = lines().length;
    await roomForTwo();
    const again = new AbortController();
    const takingAgain = broker.take(["e2"], { max: 1, signal: again.signal });
    await until(lines, "refused again", (ls) => refused(ls.slice(first)).length >= 4);
    again.abort();
    await takingAgain;
    const warned = (ls: string[]) => refused(ls).filter((l) => l.startsWith("warning ")).length;
    assert.equal(warned(lines().slice(0, first)), 1, "the first episode is warned about once");
    assert.equal(warned(lines().slice(first)), 1, "the second episode is warned about once");
  } finally {
    take.abort();
    await close();
  }
});

Deno.test({
  name: "redis maxclients: reconnects refused are warned about once an outage, with the advice",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { raw, broker, lines, close } = await openPrivate();
  const advised = (ls: string[]) =>
    ls.filter((l) =>
      l.startsWith("warning Redis ") && l.includes("refuses new connections. Raise its maxclients")
    );
  const queues = ["d1", "d2", "d3"];
  try {
    for (const q of queues) await broker.declareQueue(q);
    for (let episode = 1; episode <= 2; episode++) {
      const first = lines().length;
      const take = new AbortController();
      const taking = broker.take(queues, { max: 1, signal: take.signal });
      await new Promise((ok) => setTimeout(ok, 500)); // the watchers connect and wait
      // Every connection but this one dropped; room for two of them when they reconnect.
      await raw.config("SET", "maxclients", "3");
      await raw.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
      await until(
        lines,
        `advised (episode ${episode})`,
        (ls) => advised(ls.slice(first)).length > 0,
      );
      await raw.config("SET", "maxclients", "10000");
      await until(
        lines,
        `reconnected (episode ${episode})`,
        (ls) =>
          ls.slice(first).some((l) => /Redis connections to .* connected again after/.test(l)),
      );
      take.abort();
      assert.deepEqual(await taking, [], "the take rode the outage out");
      assert.equal(advised(lines().slice(first)).length, 1, `episode ${episode} advised once`);
    }
  } finally {
    await close();
  }
});

Deno.test({
  name: "redis maxclients: a refused reconnect and refused waits in one episode are advised once",
  ignore: WITHOUT_REDIS,
}, async () => {
  const { raw, broker, lines, close } = await openPrivate();
  const advice = (ls: string[]) =>
    ls.filter((l) => l.startsWith("warning ") && l.includes("Raise its maxclients"));
  const refusedWaits = (ls: string[]) =>
    ls.filter((l) => l.includes("Cannot wait for messages") && /max number of clients/.test(l));
  let take = new AbortController();
  try {
    for (const q of ["b1", "b2"]) await broker.declareQueue(q);
    let taking = broker.take(["b1"], { max: 1, signal: take.signal });
    await new Promise((ok) => setTimeout(ok, 500)); // b1's watchers connect and wait
    // No room at all; one of b1's waiting connections dropped: its reconnects are refused.
    await raw.config("SET", "maxclients", "1");
    const watch = String(await raw.call("CLIENT", "LIST")).split("\n")
      .find((l) => / name=celeriac-watch /.test(l));
    assert.ok(watch, "no celeriac-watch connection");
    await raw.call("CLIENT", "KILL", "ID", watch.match(/^id=(\d+)/)![1]);
    await until(lines, "a reconnect refused", (ls) => advice(ls).length > 0);
    take.abort();
    await taking;
    // Meanwhile b2's new watchers are refused their first connect: the same episode.
    take = new AbortController();
    taking = broker.take(["b1", "b2"], { max: 1, signal: take.signal });
    await until(lines, "waits refused", (ls) => refusedWaits(ls).length >= 4);
    assert.equal(advice(lines()).length, 1, advice(lines()).join("\n"));
    await raw.config("SET", "maxclients", "10000");
    await until(lines, "waits again", (ls) => ls.some((l) => l.includes("Waiting for messages")));
    take.abort();
    await taking;
  } finally {
    take.abort();
    await close();
  }
});

Deno.test({
  name: "redis maxclients: brokers on two databases of one server are advised once an episode",
  ignore: WITHOUT_REDIS,
}, async () => {
  // Before: the episodes were kept by URL, so db 0 and db 1 of one server were advised once each.
  const server = await PrivateRedis.start();
  const raw = await rawRedis(server.url);
  const records = await captureLogs("debug", ["celeriac", "broker", "redis"]);
  const lines = () => records.map(logLine);
  const urls = [
    `redis://127.0.0.1:${server.port}/0`,
    `redis://127.0.0.1:${server.port}/1?global_keyprefix=other`,
  ];
  const brokers = await Promise.all(urls.map((u) => openRedisBroker(u)));
  const take = new AbortController();
  try {
    for (const b of brokers) await b.declareQueue("t1");
    const takes = brokers.map((b) => b.take(["t1"], { max: 1, signal: take.signal }));
    await new Promise((ok) => setTimeout(ok, 500)); // the watchers connect and wait
    // No room at all; every waiting connection dropped: both brokers' reconnects are refused.
    await raw.config("SET", "maxclients", "1");
    for (const l of String(await raw.call("CLIENT", "LIST")).split("\n")) {
      if (/ name=celeriac-watch /.test(l)) {
        await raw.call("CLIENT", "KILL", "ID", l.match(/^id=(\d+)/)![1]);
      }
    }
    const refusedAt = (ls: string[], url: string) =>
      ls.some((l) => l.includes(url) && /max number of clients reached/.test(l));
    await until(lines, "both refused", (ls) => urls.every((u) => refusedAt(ls, u)));
    const advice = lines().filter((l) => l.startsWith("warning ") && l.includes("maxclients"));
    assert.equal(advice.length, 1, advice.join("\n"));
    await raw.config("SET", "maxclients", "10000");
    take.abort();
    for (const t of takes) assert.deepEqual(await t, []);
  } finally {
    take.abort();
    await reset();
    await raw.config("SET", "maxclients", "10000");
    for (const b of brokers) await b.close();
    raw.disconnect();
    await server.close();
  }
});

Deno.test({
  name: "redis maxclients: a connect refused at maxclients fails as a connection, not a reply",
  ignore: WITHOUT_REDIS,
}, async () => {
  const server = await PrivateRedis.start();
  const raw = await rawRedis(server.url);
  // As the consume connection's reconnect attempts: a take's command joins one (or opens it).
  const conn = new RespConnection({ host: "127.0.0.1", port: server.port, label: server.url });
  try {
    const connected = await info(raw, "clients", "connected_clients");
    await raw.config("SET", "maxclients", String(connected));
    const err = await conn.command(["PING"]).then(() => null, (e: Error) => e);
    // It was the server's error reply: a take rejected with it instead of riding the refusal
    // out (an unhandled rejection in a caller that did not expect it).
    assert.ok(err instanceof RedisConnectionError, `${err?.name}: ${err?.message}`);
    assert.match(err.message, /refused the connection: ERR max number of clients reached$/);
    const failure = respFailure(err, server.url);
    assert.ok(failure instanceof BrokerConnectionError);
    assert.ok(failure.transient);
    assert.match(failure.message, /refuses new connections: maxclients are connected/);
    assert.match(failure.message, /Raise its maxclients \(CONFIG SET maxclients N/);
  } finally {
    await conn.close(0);
    await raw.config("SET", "maxclients", "10000");
    raw.disconnect();
    await server.close();
  }
});
