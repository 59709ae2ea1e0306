import assert from "node:assert/strict";
import { parseAmqpUrl } from "../src/broker/amqp_url.ts";

Deno.test("amqp url: kombu's virtual host forms", () => {
  assert.equal(parseAmqpUrl("amqp://guest:guest@localhost:5672//").vhost, "/");
  assert.equal(parseAmqpUrl("amqp://guest:guest@localhost:5672/").vhost, "/");
  assert.equal(parseAmqpUrl("amqp://localhost").vhost, "/");
  assert.equal(parseAmqpUrl("amqp://localhost/%2F").vhost, "/");
  assert.equal(parseAmqpUrl("amqp://localhost/prod").vhost, "prod");
  assert.equal(parseAmqpUrl("amqp://localhost/team%2Fprod").vhost, "team/prod");
});

Deno.test("amqp url: defaults are kombu's (guest/guest, localhost, 5672 or 5671 with TLS)", () => {
  const o = parseAmqpUrl("amqp://");
  assert.deepEqual(
    [o.hostname, o.port, o.username, o.password, o.tls, o.heartbeat, o.maxPriority],
    ["localhost", 5672, "guest", "guest", false, undefined, undefined],
  );
  const s = parseAmqpUrl("amqps://u:p%40ss@mq.example.com/v");
  assert.deepEqual([s.port, s.tls, s.password], [5671, true, "p@ss"]);
  assert.equal(parseAmqpUrl("amqp://h/?ssl=true").tls, true);
  assert.equal(parseAmqpUrl("amqp://[::1]:5673/").hostname, "::1");
});

Deno.test("amqp url: heartbeat, connect_timeout and max_priority options", () => {
  const o = parseAmqpUrl("amqp://h//?heartbeat=30&connect_timeout=2.5&max_priority=10");
  assert.deepEqual([o.heartbeat, o.connectTimeout, o.maxPriority], [30, 2500, 10]);
  assert.equal(parseAmqpUrl("amqp://h//?x-max-priority=5").maxPriority, 5);
  assert.throws(() => parseAmqpUrl("amqp://h//?heartbeat=soon"), /Invalid heartbeat "soon"/);
  assert.throws(() => parseAmqpUrl("amqp://h//?max_priority=300"), /use 1 to 255/);
});

Deno.test("amqp url: other schemes and garbage are refused", () => {
  assert.throws(() => parseAmqpUrl("redis://localhost:6379/0"), /use amqp:\/\/ or amqps:\/\//);
  assert.throws(() => parseAmqpUrl("not a url"), /Invalid AMQP URL/);
  assert.throws(
    () => parseAmqpUrl("amqp://guest:s3cret@127.0.0.1:567200//"),
    (e: Error) =>
      e.message ===
        'Invalid AMQP URL "amqp://guest:***@127.0.0.1:567200//": port 567200 is out of range (1-65535)',
  );
});
