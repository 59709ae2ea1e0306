import assert from "node:assert/strict";
import { BrokerConnectionError, maskPassword } from "../protocol.ts";

Deno.test("maskPassword masks every password a URL can carry", () => {
  const cases: [string, string][] = [
    ["redis://:secret@h:6379/0", "redis://:***@h:6379/0"],
    ["amqp://guest:pa%40ss@h//", "amqp://guest:***@h//"],
    ["redis://u:p@ss@h/0", "redis://u:***@h/0"],
    [
      "sentinel://:pw1@h1:26379;sentinel://:pw2@h2:26379",
      "sentinel://:***@h1:26379;sentinel://:***@h2:26379",
    ],
    ["redis+cluster://:pw@a:1,b:2", "redis+cluster://:***@a:1,b:2"],
    [
      "sentinel://h:26379?master_name=m&sentinel_password=spw",
      "sentinel://h:26379?master_name=m&sentinel_password=***",
    ],
    ["redis://h:6379/0?password=secret", "redis://h:6379/0?password=***"],
    ["redis://h:6379/0", "redis://h:6379/0"],
    ["redis://user@h:6379/0", "redis://user@h:6379/0"],
    ["kv://./data/q.sqlite", "kv://./data/q.sqlite"],
  ];
  for (const [url, masked] of cases) assert.equal(maskPassword(url), masked, url);
});

Deno.test("a connection error never carries the password, in its message or its url", () => {
  const err = new BrokerConnectionError(
    "sentinel://:one@h1:26379;sentinel://:two@h2:26379?sentinel_password=three",
    new Error("ECONNREFUSED"),
  );
  for (const secret of ["one", "two", "three"]) {
    assert.doesNotMatch(err.message, new RegExp(`\\b${secret}\\b`));
    assert.doesNotMatch(err.url, new RegExp(`\\b${secret}\\b`));
  }
});

Deno.test("URL parse errors do not echo the password", async () => {
  const { parseAmqpUrl } = await import("../src/broker/amqp_url.ts");
  const { parseRedisUrl } = await import("../src/broker/redis_url.ts");
  const bad = [
    () => parseAmqpUrl("amqp://u:hunter2@h:5672/v?heartbeat=x"),
    () => parseRedisUrl("redis://:hunter2@h:6379/x"),
  ];
  for (const f of bad) {
    assert.throws(f, (err: unknown) => {
      assert.ok(err instanceof Error);
      assert.doesNotMatch(err.message, /hunter2/);
      assert.match(err.message, /\*\*\*/);
      return true;
    });
  }
});
