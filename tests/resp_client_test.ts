/**
 * RespClient, the general connection on a single Redis server without
 * ioredis (src/broker/resp_client.ts), on a private redis-server of its own
 * (it is killed and restarted): a command waits across a short restart.
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
