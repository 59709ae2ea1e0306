/**
 * The Sentinel watch's warnings, on a stand-in connection that emits what
 * ioredis emits: an address of the `sentinel://` URL that is a plain Redis
 * server (it answers the Sentinel command with an unknown-command error) is
 * named once per process.
 */

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { reset } from "@logtape/logtape";
import type { Redis } from "ioredis";
import { watchSentinelMaster } from "../src/broker/redis_sentinel_watch.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";

/** ioredis' sentinelError for `address` answering as a plain Redis server. */
const notSentinel = (address: string) =>
  new Error(
    `failed to connect to sentinel ${address} because ERR unknown command 'sentinel', with args ` +
      "beginning with: 'get-master-addr-by-name' 'm1'",
  );

Deno.test("sentinel watch: an address of the URL that is a plain Redis server is named once", async () => {
  const records = await captureLogs("info");
  try {
    const sentinels = [{ host: "127.0.0.1", port: 6399 }, { host: "127.0.0.1", port: 26399 }];
    const clients = [new EventEmitter(), new EventEmitter()];
    for (const c of clients) {
      watchSentinelMaster(c as unknown as Redis, { name: "m1", sentinels }, 60_000);
    }
    for (const c of clients) {
      c.emit("sentinelError", notSentinel("127.0.0.1:6399"));
      c.emit("sentinelError", notSentinel("127.0.0.1:6399"));
    }
    // A Sentinel that cannot be reached is not one: it says nothing new (the outage warning does).
    clients[0].emit(
      "sentinelError",
      new Error("failed to connect to sentinel 127.0.0.1:26399 because connect ECONNREFUSED"),
    );
    // Before: nothing was said (ioredis asked the next address without a word).
    const lines = records.map(logLine).filter((l) => l.includes("not a Sentinel"));
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(
      lines[0],
      /^warning 127\.0\.0\.1:6399, a Sentinel of Redis master m1 .* is a Redis server, not a Sentinel/,
    );
  } finally {
    await reset();
  }
});
