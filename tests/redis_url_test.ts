import assert from "node:assert/strict";
import { maskPassword } from "../src/broker/errors.ts";
import { parseRedisUrl } from "../src/broker/redis_url.ts";

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
