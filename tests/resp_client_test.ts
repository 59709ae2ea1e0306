/**
 * RespClient, the general connection on a single Redis server without
 * ioredis (src/broker/resp_client.ts), on a private redis-server of its own
 * (it is killed and restarted): a command waits across a short restart,
 * READONLY reconnects, scripts in transactions, EXECABORT, errors inside
 * EXEC, quit() with replies due, a leading BOM kept.
 */

import assert from "node:assert/strict";
import { parseRedisUrl } from "../src/broker/redis_url.ts";
import { RespClient } from "../src/broker/resp_client.ts";
import { type PrivateServers, privateServers } from "./helpers/redis_servers.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A private server and a client on it; both stopped after `fn`. */
async function withServer(
  name: string,
  fn: (client: RespClient, servers: PrivateServers) => Promise<void>,
): Promise<void> {
  const servers = await privateServers(name, (s) => s.redis(0));
  const url = `redis://127.0.0.1:${servers.base}/0`;
  const client = new RespClient(parseRedisUrl(url), url, { name: "celeriac-test" });
  try {
    await fn(client, servers);
  } finally {
    await client.quit();
    await servers.stop();
  }
}

/** Kill the server (the client sees the drop), start it again after `downMs`. */
async function restart(
  servers: PrivateServers,
  downMs: number,
): Promise<{ back: Promise<unknown> }> {
  await servers.processes.at(-1)!.kill();
  await sleep(20);
  return { back: sleep(downMs).then(() => servers.redis(0)) };
}

Deno.test({
  name: "RespClient: a command sent while the server restarts for 300 ms waits for it",
  ignore: WITHOUT_REDIS,
  fn: () =>
    withServer("resp-client-restart", async (client, servers) => {
      assert.equal(await client.send(["INCR", "k"]), 1);
      const { back } = await restart(servers, 300);
      const t0 = Date.now();
      // The server restarted empty: the INCR ran on the new one.
      assert.equal(await client.send(["INCR", "k"]), 1);
      assert.ok(Date.now() - t0 >= 250, `answered after ${Date.now() - t0} ms`);
      await back;
    }),
});

Deno.test({
  name: "RespClient: a command fails once the server stays down for over a second",
  ignore: WITHOUT_REDIS,
  fn: () =>
    withServer("resp-client-down", async (client, servers) => {
      await client.ping();
      const { back } = await restart(servers, 3000);
      const t0 = Date.now();
      await assert.rejects(client.ping(), { name: "RedisConnectionError" });
      const took = Date.now() - t0;
      assert.ok(took >= 900 && took < 2500, `failed after ${took} ms`);
      await back;
    }),
});

Deno.test({
  name: "RespClient: a write refused as READONLY reconnects and is sent again",
  ignore: WITHOUT_REDIS,
  fn: () =>
    withServer("resp-client-readonly", async (client, servers) => {
      const url = `redis://127.0.0.1:${servers.base}/0`;
      const admin = new RespClient(parseRedisUrl(url), url, { name: "celeriac-admin" });
      try {
        const before = await client.send(["CLIENT", "ID"]);
        // Demoted (a replica of a master that is not there), promoted again 10 ms later.
        await admin.send(["REPLICAOF", "127.0.0.1", String(servers.base + 1)]);
        const promoted = sleep(10).then(() => admin.send(["REPLICAOF", "NO", "ONE"]));
        assert.equal(await client.send(["SET", "k", "v"]), "OK");
        await promoted;
        assert.notEqual(await client.send(["CLIENT", "ID"]), before, "a new connection");
        assert.equal(await client.get("k"), "v");
      } finally {
        await admin.quit();
      }
    }),
});

Deno.test({
  name: "RespClient: disconnect(true) drops the connection and dials again",
  ignore: WITHOUT_REDIS,
  fn: () =>
    withServer("resp-client-redial", async (client) => {
      const before = await client.send(["CLIENT", "ID"]);
      client.disconnect(true);
      assert.notEqual(await client.send(["CLIENT", "ID"]), before);
    }),
});

/** A defined script (as the broker defines its own), a method of the client and its transactions. */
interface WithScript {
  bump(key: string, by: number): Promise<unknown>;
}

function defineBump(client: RespClient): void {
  client.defineCommand("bump", {
    lua: "return redis.call('INCRBY', KEYS[1], ARGV[1])",
    numberOfKeys: 1,
  });
}

Deno.test({
  name: "RespClient: a transaction runs its scripts after SCRIPT FLUSH",
  ignore: WITHOUT_REDIS,
  fn: () =>
    withServer("resp-client-scripts", async (client) => {
      defineBump(client);
      assert.equal(await (client as unknown as WithScript).bump("n", 2), 2);
      await client.send(["SCRIPT", "FLUSH"]);
      const tx = client.multi() as unknown as WithScript & ReturnType<RespClient["multi"]>;
      tx.bump("n", 3);
      tx.get("n");
      assert.deepEqual(await tx.exec(), [[null, 5], [null, "5"]]);
      await client.send(["SCRIPT", "FLUSH"]);
      // Outside a transaction: EVALSHA's NOSCRIPT falls back to EVAL.
      assert.equal(await (client as unknown as WithScript).bump("n", 1), 6);
    }),
});

Deno.test({
  name: "RespClient: a command refused as it is queued aborts the transaction (EXECABORT)",
  ignore: WITHOUT_REDIS,
  fn: () =>
    withServer("resp-client-execabort", async (client) => {
      const tx = client.multi();
      tx.set("a", "1");
      tx.zadd("z"); // wrong number of arguments
      const err = await tx.exec().then(() => null, (e) => e);
      assert.equal(err?.code, "EXECABORT");
      assert.equal(err.previousErrors.length, 1);
      assert.match(err.previousErrors[0].message, /wrong number of arguments/);
      assert.equal(await client.get("a"), null, "nothing ran");
    }),
});

Deno.test({
  name: "RespClient: an error inside EXEC is that command's, the others ran",
  ignore: WITHOUT_REDIS,
  fn: () =>
    withServer("resp-client-exec-error", async (client) => {
      await client.hset("h", "f", "v");
      const tx = client.multi();
      tx.set("a", "1");
      tx.get("h"); // WRONGTYPE when it runs
      tx.llen("missing");
      const replies = await tx.exec();
      assert.equal(replies?.length, 3);
      assert.deepEqual(replies![0], [null, "OK"]);
      assert.match(replies![1][0]!.message, /^WRONGTYPE/);
      assert.deepEqual(replies![2], [null, 0]);
      assert.equal(await client.get("a"), "1");
    }),
});

Deno.test({
  name: "RespClient: quit() waits for the replies due, then commands fail",
  ignore: WITHOUT_REDIS,
  fn: async () => {
    const servers = await privateServers(
      "resp-client-quit",
      (s) => s.redis(0, ["--enable-debug-command", "yes"]),
    );
    const url = `redis://127.0.0.1:${servers.base}/0`;
    const client = new RespClient(parseRedisUrl(url), url, { name: "celeriac-test" });
    try {
      await client.ping();
      const pending = [client.lpush("l", "x"), client.send(["DEBUG", "SLEEP", "0.2"])];
      const quit = client.quit();
      assert.deepEqual(await Promise.all(pending), [1, "OK"]);
      assert.equal(await quit, "OK");
      await assert.rejects(client.ping(), { name: "RedisConnectionError", message: /closed/ });
    } finally {
      await servers.stop();
    }
  },
});

Deno.test({
  name: "RespClient: a refused SCRIPT LOAD is that script's error, the transaction ran",
  ignore: WITHOUT_REDIS,
  fn: () =>
    withServer("resp-client-noload", async (admin, servers) => {
      await admin.send(["ACL", "SETUSER", "u", "on", ">pw", "~*", "&*", "+@all", "-script|load"]);
      const url = `redis://u:pw@127.0.0.1:${servers.base}/0`;
      const client = new RespClient(parseRedisUrl(url), url, { name: "celeriac-test" });
      try {
        defineBump(client);
        const tx = client.multi() as unknown as WithScript & ReturnType<RespClient["multi"]>;
        tx.bump("n", 3);
        tx.set("a", "1");
        const replies = await tx.exec();
        assert.match(replies![0][0]!.message, /^NOPERM/);
        assert.deepEqual(replies![1], [null, "OK"]);
        assert.equal(await client.get("a"), "1");
      } finally {
        await client.quit();
      }
    }),
});

Deno.test({
  name: "RespClient: a bulk string's leading BOM is kept, as ioredis keeps it",
  ignore: WITHOUT_REDIS,
  fn: () =>
    withServer("resp-client-bom", async (client) => {
      const bom = new Uint8Array([0xef, 0xbb, 0xbf, 0x61]);
      await client.send(["RPUSH", "l", bom, "b"]);
      assert.deepEqual(await client.send(["LRANGE", "l", 0, -1]), ["\ufeffa", "b"]);
    }),
});
