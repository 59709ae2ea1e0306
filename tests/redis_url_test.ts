import assert from "node:assert/strict";
import { maskPassword } from "../src/broker/errors.ts";
import {
  connectTimeoutOf,
  failoverWaitOf,
  parseRedisUrl,
  replyTimeoutOf,
} from "../src/broker/redis_url.ts";
import { openAmqpBroker } from "../src/broker/amqp.ts";
import { parseAmqpUrl } from "../src/broker/amqp_url.ts";
import { openRpcBackend } from "../src/backend/rpc.ts";
import {
  AMQP_URL_OPTIONS,
  type AmqpUrlOption,
  REDIS_URL_OPTIONS,
  type RedisUrlOption,
} from "../src/broker/url_options.ts";
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

Deno.test("redis and amqp urls: an option of no kind Celeriac knows is warned of once as a typo", async () => {
  const records = await captureLogs("info", ["celeriac", "broker"]);
  try {
    const typo = "redis://:pw@127.0.0.1:6379/3?visibility_timout=10&global_keyprefix=a:";
    parseRedisUrl(typo);
    parseRedisUrl(typo); // parsed again at each connection: said once
    parseRedisUrl("sentinel://h1:26379;sentinel://h2:26379/0?master_name=m&failover_wait=5");
    parseRedisUrl("redis+cluster://h1:7000,h2:7001?socket_timout=5");
    parseAmqpUrl("amqp://guest:guest@127.0.0.1:5672//?heartbeet=10&heartbeat=5");
    const redis = "db, visibility_timeout, global_keyprefix, result_expires, socket_timeout, " +
      "socket_connect_timeout, failover_wait, master_name, sentinel_password, sentinel_username";
    assert.deepEqual(records.map(logLine), [
      `warning URL option visibility_timout of redis://:***@127.0.0.1:6379/3?visibility_timout=10&global_keyprefix=a: is ignored: Celeriac reads ${redis} there (a typo?)`,
      `warning URL option socket_timout of redis+cluster://h1:7000,h2:7001?socket_timout=5 is ignored: Celeriac reads ${redis} there (a typo?)`,
      "warning URL option heartbeet of amqp://guest:***@127.0.0.1:5672//?heartbeet=10&heartbeat=5 is ignored: Celeriac reads ssl, heartbeat, connect_timeout, publish_timeout, max_priority, x-max-priority, delivery_limit, quorum_queues, queue_type, exchange_type, delay_queue_type there (a typo?)",
    ]);
  } finally {
    await reset();
  }
});

Deno.test(
  "redis and amqp urls: kombu's and redis-py's options are not called typos: nothing " +
    "when Celeriac does what they ask, else what it does instead",
  async () => {
    const records = await captureLogs("info", ["celeriac", "broker"]);
    const said = (url: string) => {
      records.length = 0;
      url.startsWith("amqp") ? parseAmqpUrl(url) : parseRedisUrl(url);
      return records.map((r) =>
        `${r.level} ${r.properties.option}: ${r.properties.says ?? r.message.join("")}`
      );
    };
    try {
      // What Celeriac does anyway (Celery's Redis backend requires ssl_cert_reqs on rediss://).
      assert.deepEqual(
        said("rediss://:pw@h:6380/0?ssl_cert_reqs=CERT_REQUIRED&ssl_check_hostname=true"),
        [],
      );
      assert.deepEqual(said("rediss://h/0?ssl_cert_reqs=required"), []);
      assert.deepEqual(said("amqps://u:p@h//?ssl_cert_reqs=CERT_REQUIRED&login_method=PLAIN"), []);
      // Done Celeriac's own way: info.
      assert.deepEqual(
        said("redis://h/0?health_check_interval=10&retry_on_timeout=true&max_connections=20"),
        [
          "info health_check_interval: Celeriac takes a connection whose command got no reply for socket_timeout (default 30 s) for dead and reconnects it",
          "info retry_on_timeout: Celeriac reconnects by itself and retries what failed in an outage",
          "info max_connections: Celeriac opens a few connections per process, not a pool",
        ],
      );
      assert.deepEqual(said("rediss://h/0?ssl_cert_reqs=CERT_REQUIRED&ssl_ca_certs=/etc/ca.pem"), [
        "info ssl_ca_certs: Celeriac does not read /etc/ca.pem: Deno trusts its root store and the CAs of DENO_CERT; start the process with DENO_CERT=/etc/ca.pem (or --cert) if that CA is private",
      ]);
      assert.deepEqual(said("amqps://u:p@h//?ssl_min_version=3"), [
        "info ssl_min_version: Deno's own TLS settings apply",
      ]);
      // Not done: a warning saying what happens instead.
      const verified =
        ": Celeriac verifies the server's certificate (Deno cannot skip that for one " +
        "connection); for a private CA start the process with DENO_CERT=/path/to/ca.pem (or " +
        "--cert), for a test set-up with --unsafely-ignore-certificate-errors=<host>";
      assert.deepEqual(said("rediss://:pw@h:6380/0?ssl_cert_reqs=CERT_NONE"), [
        `warning ssl_cert_reqs: CERT_NONE is not honoured${verified}`,
      ]);
      assert.deepEqual(said("amqps://u:p@h//?ssl_cert_reqs=optional"), [
        `warning ssl_cert_reqs: optional is not honoured${verified}`,
      ]);
      assert.deepEqual(said("rediss://h/1?ssl_cert_reqs=CERT_MAYBE"), [
        `warning ssl_cert_reqs: "CERT_MAYBE" is none of CERT_REQUIRED, CERT_OPTIONAL, CERT_NONE (Celery refuses it)${verified}`,
      ]);
      assert.deepEqual(
        said("rediss://h/0?ssl_cert_reqs=required&ssl_certfile=/c.pem&ssl_check_hostname=false"),
        [
          "warning ssl_certfile: Celeriac presents no client certificate: a server that requires one refuses the connection",
          "warning ssl_check_hostname: Celeriac checks the server's host name against its certificate",
        ],
      );
      assert.deepEqual(said("amqp://u:p@h//?login_method=EXTERNAL&connect_timeout=4"), [
        "warning login_method: EXTERNAL is not supported: Celeriac authenticates with PLAIN, the URL's user name and password (guest:guest if none)",
      ]);
      assert.deepEqual(said("redis://h/2?ssl_cert_reqs=required"), [
        "warning ssl_cert_reqs: the connection is not TLS (rediss://, amqps://): it changes nothing",
      ]);
    } finally {
      await reset();
    }
  },
);

/** A value of each option Celeriac reads: a new one in the lists does not compile without one. */
const REDIS_VALUES: Record<RedisUrlOption, string> = {
  db: "1",
  visibility_timeout: "60",
  global_keyprefix: "app:",
  result_expires: "3600",
  socket_timeout: "5",
  socket_connect_timeout: "2",
  failover_wait: "30",
  master_name: "mymaster",
  sentinel_password: "pw",
  sentinel_username: "sentinel",
};
const AMQP_VALUES: Record<AmqpUrlOption, string> = {
  ssl: "false",
  heartbeat: "30",
  connect_timeout: "4",
  publish_timeout: "10",
  max_priority: "10",
  "x-max-priority": "10",
  delivery_limit: "5",
  quorum_queues: "a,b",
  queue_type: "quorum",
  exchange_type: "topic",
  delay_queue_type: "classic",
};

Deno.test(
  "redis and amqp urls: every option Celeriac reads is taken without a warning (publish_timeout, " +
    "read by the AMQP broker, was warned of as ignored, a typo)",
  async () => {
    const records = await captureLogs("debug", ["celeriac", "broker"]);
    try {
      assert.deepEqual([...REDIS_URL_OPTIONS.read].sort(), Object.keys(REDIS_VALUES).sort());
      assert.deepEqual([...AMQP_URL_OPTIONS.read].sort(), Object.keys(AMQP_VALUES).sort());
      const redisQuery = new URLSearchParams(REDIS_VALUES).toString();
      for (const url of [`redis://h/0?${redisQuery}`, `sentinel://h:26379?${redisQuery}`]) {
        const parsed = parseRedisUrl(url);
        assert.deepEqual({ ...parsed.query }, REDIS_VALUES);
        assert.equal(replyTimeoutOf(parsed, url), 5000);
        assert.equal(connectTimeoutOf(parsed, url), 2000);
        assert.equal(failoverWaitOf(parsed, url), url.startsWith("sentinel") ? 30_000 : 0);
      }
      const amqp = parseAmqpUrl(`amqp://h//?${new URLSearchParams(AMQP_VALUES)}`);
      assert.deepEqual({ ...amqp.query }, AMQP_VALUES);
      assert.equal(amqp.publishTimeout, 10);
      assert.deepEqual(records.map(logLine), []);
      assert.throws(
        () => parseAmqpUrl("amqp://h//?publish_timeout=soon"),
        /publish_timeout "soon"/,
      );
      // 0 was taken: every publish then timed out at once.
      assert.throws(
        () => parseAmqpUrl("amqp://h//?publish_timeout=0"),
        /Invalid publish_timeout "0" in "amqp:\/\/h\/\/\?publish_timeout=0": use 0\.001 to 2147483\.647 seconds/,
      );
    } finally {
      await reset();
    }
  },
);

Deno.test(
  "redis and amqp urls: a timeout longer than a timer holds (24.8 days) or too short to wait is " +
    "refused, not a timer that fires after 1 ms",
  async () => {
    // Before: each was taken, and every publish / command / connect timed out at once
    // (TimeoutOverflowWarning: the timer was set to 1 ms), or, for 0.0001 s, as 0 did.
    for (const value of ["2147484", "3000000", "0.0001"]) {
      assert.throws(
        () => parseAmqpUrl(`amqp://h//?publish_timeout=${value}`),
        new RegExp(
          `Invalid publish_timeout "${value}" in "amqp://h//\\?publish_timeout=${value}": use 0\\.001 to 2147483\\.647 seconds`,
        ),
      );
    }
    assert.equal(
      parseAmqpUrl("amqp://h//?publish_timeout=2147483.647").publishTimeout,
      2147483.647,
    );
    assert.equal(parseAmqpUrl("amqp://h//?publish_timeout=0.001").publishTimeout, 0.001);
    assert.throws(
      () => parseAmqpUrl("amqp://h//?connect_timeout=3000000"),
      /Invalid connect_timeout "3000000" in "amqp:\/\/h\/\/\?connect_timeout=3000000": use at most 2147483\.647 seconds/,
    );
    // The option as the URL: checked before anything connects.
    await assert.rejects(
      openAmqpBroker("amqp://127.0.0.1:1//", { publishTimeout: 3_000_000 }),
      /Invalid publishTimeout 3000000: use 0\.001 to 2147483\.647 seconds/,
    );
    await assert.rejects(
      openRpcBackend("rpc://127.0.0.1:1//", { publishTimeout: 0.0001 }),
      /Invalid publishTimeout 0\.0001: use 0\.001 to 2147483\.647 seconds/,
    );
    for (const key of ["socket_timeout", "socket_connect_timeout"]) {
      const url = `redis://h/0?${key}=3000000`;
      assert.throws(
        () =>
          key === "socket_timeout"
            ? replyTimeoutOf(parseRedisUrl(url), url)
            : connectTimeoutOf(parseRedisUrl(url), url),
        new RegExp(
          `Invalid ${key} "3000000" in "redis://h/0\\?${key}=3000000": use at most 2147483\\.647 seconds`,
        ),
      );
    }
    const longest = "redis://h/0?socket_timeout=2147483.647";
    assert.equal(replyTimeoutOf(parseRedisUrl(longest), longest), 2 ** 31 - 1);
  },
);
