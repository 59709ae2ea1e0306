import assert from "node:assert/strict";
import { maskPassword } from "../src/broker/errors.ts";
import { parseRedisUrl } from "../src/broker/redis_url.ts";
import { parseAmqpUrl } from "../src/broker/amqp_url.ts";
import { reset } from "@logtape/logtape";
import { captureLogs, logLine } from "./helpers/logs.ts";

Deno.test("redis url: host, port, db, credentials, TLS and query options", () => {
  assert.deepEqual(parseRedisUrl("redis://:p%40ss@10.0.0.5:6380/2?visibility_timeout=60"), {
    host: "10.0.0.5",
    port: 6380,
    db: 2,
    username: undefined,
    password: "p@ss",
    tls: false,
    query: { visibility_timeout: "60" },
  });
  const tls = parseRedisUrl("rediss://user:pw@cache.example.com/0?global_keyprefix=app:");
  assert.equal(tls.tls, true);
  assert.equal(tls.username, "user");
  assert.equal(tls.port, 6379);
  assert.equal(tls.query.global_keyprefix, "app:");
  const bare = parseRedisUrl("redis://localhost");
  assert.equal(bare.db, 0);
  assert.equal(bare.host, "localhost");
  assert.equal(parseRedisUrl("redis://[::1]:6379/1").host, "::1");
});

Deno.test("redis url: ?db= wins over the path (redis-py, Celery's backend), also through Sentinel", () => {
  assert.equal(parseRedisUrl("redis://h:6379/2?db=7").db, 7);
  assert.equal(parseRedisUrl("rediss://h?db=3").db, 3);
  assert.equal(parseRedisUrl("sentinel://h1:26379/1;sentinel://h2:26379?master_name=m&db=4").db, 4);
  assert.equal(parseRedisUrl("redis+cluster://h1:7000,h2:7001?db=0").db, 0);
  assert.throws(() => parseRedisUrl("redis+cluster://h1:7000?db=2"), /only database 0, not "2"/);
  assert.throws(() => parseRedisUrl("redis://h/0?db=two"), /Invalid Redis database "two"/);
  assert.throws(() => parseRedisUrl("redis://h/0?db="), /Invalid Redis database ""/);
});

Deno.test("redis url: bad URLs are refused with what to write instead", () => {
  assert.throws(() => parseRedisUrl("not a url"), /expected redis:\/\/host:port\/db/);
  assert.throws(() => parseRedisUrl("amqp://guest@localhost//"), /use redis:\/\/ or rediss:\/\//);
  assert.throws(() => parseRedisUrl("redis://localhost/zero"), /use a number/);
  // A port new URL() refuses was only "invalid", and the message carried the password.
  assert.throws(
    () => parseRedisUrl("redis://:s3cret@127.0.0.1:99999/0"),
    (e: Error) =>
      e.message === 'Invalid Redis URL "redis://:***@127.0.0.1:99999/0": port 99999 is out of ' +
          "range (1-65535)",
  );
  assert.throws(() => parseRedisUrl("redis://127.0.0.1:6379x/0"), /port "6379x" is not a number/);
  // A password with an unencoded # / ?: it was shown, and blamed as the port ("port "ab"").
  for (const url of ["redis://:ab#cd@host:6379/0", "redis://:a/b?c@host:6379/0"]) {
    assert.throws(
      () => parseRedisUrl(url),
      (e: Error) =>
        e.message === 'Invalid Redis URL "redis://:***@host:6379/0": a user name or password ' +
            "holding / ? # or @ must be percent-encoded (encodeURIComponent in JavaScript, " +
            "urllib.parse.quote in Python)",
      url,
    );
  }
  assert.throws(
    () => parseRedisUrl("sentinel://:pw@h:99999?master_name=m"),
    (e: Error) => /Invalid Sentinel URL "sentinel:\/\/:\*\*\*@h:99999/.test(e.message),
  );
  assert.throws(
    () => parseRedisUrl("https://:s3cret@host/0"),
    (e: Error) => /Not a Redis URL: "https:\/\/:\*\*\*@host\/0"/.test(e.message),
  );
  assert.throws(
    () => parseRedisUrl("sentinel://:s3cret@host:26379"),
    (e: Error) => /names no master/.test(e.message) && !e.message.includes("s3cret"),
  );
});

Deno.test("maskPassword hides the password in any URL", () => {
  assert.equal(maskPassword("redis://:secret@host:6379/0"), "redis://:***@host:6379/0");
  assert.equal(maskPassword("redis://user:secret@host/0"), "redis://user:***@host/0");
  assert.equal(maskPassword("redis://host:6379/0"), "redis://host:6379/0");
});

Deno.test("redis and amqp urls: an option Celeriac does not read is warned of once, not ignored silently", async () => {
  const records = await captureLogs("warning", ["celeriac", "broker"]);
  try {
    const typo = "redis://:pw@127.0.0.1:6379/3?visibility_timout=10&global_keyprefix=a:";
    parseRedisUrl(typo);
    parseRedisUrl(typo); // parsed again at each connection: said once
    parseRedisUrl("sentinel://h1:26379;sentinel://h2:26379/0?master_name=m&failover_wait=5");
    parseRedisUrl("redis+cluster://h1:7000,h2:7001?socket_timout=5");
    parseAmqpUrl("amqp://guest:guest@127.0.0.1:5672//?heartbeet=10&heartbeat=5");
    assert.deepEqual(records.map(logLine), [
      "warning URL option visibility_timout of redis://:***@127.0.0.1:6379/3?visibility_timout=10&global_keyprefix=a: is ignored: Celeriac reads db, visibility_timeout, global_keyprefix, result_expires, socket_timeout, socket_connect_timeout, failover_wait, master_name, sentinel_password, sentinel_username there (a typo?)",
      "warning URL option socket_timout of redis+cluster://h1:7000,h2:7001?socket_timout=5 is ignored: Celeriac reads db, visibility_timeout, global_keyprefix, result_expires, socket_timeout, socket_connect_timeout, failover_wait, master_name, sentinel_password, sentinel_username there (a typo?)",
      "warning URL option heartbeet of amqp://guest:***@127.0.0.1:5672//?heartbeet=10&heartbeat=5 is ignored: Celeriac reads ssl, heartbeat, connect_timeout, max_priority, x-max-priority, delivery_limit, quorum_queues, queue_type, exchange_type, delay_queue_type there (a typo?)",
    ]);
  } finally {
    await reset();
  }
});
