/**
 * Connection mistakes a new user makes get an error that says which mistake
 * it is: a Redis database that does not exist (on the broker, the backend and
 * their extra connections), a wrong or missing password, a host that does not
 * resolve, nothing listening, an empty or scheme-less URL.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { openBackend, openBroker, openScheduleStore } from "../protocol.ts";
import { RedisBroker } from "../src/broker/redis.ts";
import { RedisBackend } from "../src/backend/redis.ts";
import { BrokerConnectionError, withUrlSource } from "../src/broker/errors.ts";
import { describeRedisFailure } from "../src/broker/redis_failures.ts";
import { WrongServerError } from "../src/broker/server_probe.ts";
import { runEnvCase } from "./helpers/env_cases.ts";
import { reservePorts } from "./helpers/ports.ts";
import { PrivateRedis } from "./helpers/private_redis.ts";
import { REDIS_URL } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const test = (name: string, fn: () => Promise<void> | void) =>
  Deno.test({ name: `connect errors: ${name}`, ignore: WITHOUT_REDIS }, fn);

const base = new URL(REDIS_URL);
const missingDb = `redis://${base.host}/99`;

function rejectsWith(re: RegExp, transient = false) {
  return (e: Error & { code?: string; transient?: boolean }) => {
    assert.equal(e.name, "BrokerConnectionError");
    assert.equal(e.code, "BROKER_CONNECTION");
    assert.match(e.message, re);
    assert.equal(e.transient, transient, "whether retrying may help");
    return true;
  };
}

test("a database the server does not have fails the broker and backend at connect", async () => {
  const dbGone = /database 99 does not exist .*DB index is out of range/;
  await assert.rejects(openBroker(missingDb), rejectsWith(dbGone));
  await assert.rejects(openBackend(missingDb), rejectsWith(dbGone));
  const app = new Celery({ broker: missingDb, backend: missingDb });
  await assert.rejects(app.task("t.noop", () => 1).delay(), rejectsWith(dbGone));
  await app.close();
});

test("a database the server does not have fails the extra connections too", async () => {
  const broker = new RedisBroker(missingDb);
  const ac = new AbortController();
  try {
    await assert.rejects(
      broker.subscribe("celeriac.test.fanout", () => {}, { signal: ac.signal }),
      rejectsWith(/database 99 does not exist/),
    );
  } finally {
    ac.abort();
    await broker.close();
  }
  const backend = new RedisBackend(missingDb);
  try {
    await assert.rejects(
      backend.waitFor("no-such-task", AbortSignal.timeout(10_000)),
      rejectsWith(/database 99 does not exist/),
    );
  } finally {
    await backend.close();
  }
});

test("wrong password, missing password, unknown host and refused say which", async () => {
  const server = await PrivateRedis.start(["--requirepass", "sekret"]);
  const port = server.port;
  try {
    await assert.rejects(
      openBroker(`redis://:wrong@127.0.0.1:${port}/0`),
      rejectsWith(/password is wrong \(WRONGPASS/),
    );
    await assert.rejects(
      openBackend(`redis://127.0.0.1:${port}/0`),
      rejectsWith(/requires a password and none was given \(NOAUTH/),
    );
    const ok = await openBroker(`redis://:sekret@127.0.0.1:${port}/0`);
    await ok.close();
  } finally {
    await server.close();
  }
  await assert.rejects(
    openBroker("redis://no-such-host.invalid:6379/0"),
    rejectsWith(/host name of no-such-host\.invalid:6379 does not resolve \(DNS/, true),
  );
  await assert.rejects(
    openBroker("redis://127.0.0.1:1/0"),
    rejectsWith(/connection refused: nothing listens on 127\.0\.0\.1:1/, true),
  );
});

test("a password given to a server that has none says so, and is not retried", async () => {
  // Was "ERR AUTH <password> called without any password configured ...", retried as if the
  // server were down (100 times, about 50 minutes, for the worker), though only the URL fixes it.
  const url = `redis://:sekret@${base.host}/0`;
  const saysSo =
    /the server has no password \(ERR AUTH <password> called without any password configured.*\)\. Remove the password from the URL: redis:\/\/host:port\/db/;
  await assert.rejects(openBroker(url), rejectsWith(saysSo));
  await assert.rejects(openBackend(url), rejectsWith(saysSo));
});

test("a connection error names where its URL came from, not every place it can", async () => {
  await runEnvCase("connection error names its URL's source");
});

test("a transport opened on its own names its URL alone; the app adds the URL's source once", async () => {
  // The transports said "(set by new Celery({ broker, backend }), CELERY_BROKER_URL /
  // CELERY_RESULT_BACKEND, or the command line's --broker / --backend)" for a URL given to them.
  const refused = (url: string) =>
    new RegExp(
      `^Cannot connect to ${RegExp.escape(url)}: .*(refused|ECONNREFUSED).*\\. ` +
        "Check that the server runs and the URL is right$",
    );
  for (
    const [open, url] of [
      [openBroker, "redis://127.0.0.1:1/0"],
      [openBackend, "redis://127.0.0.1:1/0"],
      [openBroker, "amqp://guest:***@127.0.0.1:1//"],
    ] as const
  ) {
    await assert.rejects(open(url.replace("***", "guest")), rejectsWith(refused(url), true));
  }
  const app = new Celery({ broker: "redis://127.0.0.1:1/0", backend: "redis://127.0.0.1:1/1" });
  try {
    await assert.rejects(app.broker(), (e: Error) => {
      assert.equal(e.message.match(/set by/g)?.length, 1, e.message);
      assert.match(
        e.message,
        /right \(set by the app's broker option \(new Celery\(\{ broker \}\)/,
      );
      return true;
    });
    await assert.rejects(app.resultBackend(), (e: Error) => {
      assert.equal(e.message.match(/set by/g)?.length, 1, e.message);
      assert.match(e.message, /right \(set by the app's backend option/);
      return true;
    });
  } finally {
    await app.close();
  }
});

Deno.test("connect errors: an empty CELERY_BROKER_URL / CELERY_RESULT_BACKEND counts as unset", async () => {
  // Set in a process of its own: files running in parallel share this one's environment.
  await runEnvCase("empty broker and backend variables");
});

Deno.test("connect errors: a URL without a scheme says the scheme is missing", async () => {
  await assert.rejects(
    openBroker("127.0.0.1:6379"),
    /broker URL "127\.0\.0\.1:6379" has no scheme: write it as a URL, e\.g\. redis:\/\//,
  );
  await assert.rejects(
    openBackend("localhost:6379/0"),
    /result backend URL "localhost:6379\/0" has no scheme/,
  );
  // Its password is masked as in every other message (it was printed whole).
  await assert.rejects(
    openBroker(":s3cret,x@127.0.0.1:6379/0"),
    (err: Error) => {
      assert.match(err.message, /broker URL ":\*\*\*@127\.0\.0\.1:6379\/0" has no scheme/);
      assert.doesNotMatch(err.message, /s3cret/);
      return true;
    },
  );
});

Deno.test("connect errors: a known scheme without its // says so, before connecting", async () => {
  // `redis:/host:6379/0` read as a path ("Invalid Redis database"); `amqp:/host//` as vhost
  // "host//" on localhost.
  await assert.rejects(
    openBroker("redis:/127.0.0.1:1/0"),
    new TypeError(
      'The broker URL lacks the // after "redis:": write it as redis://127.0.0.1:1/0',
    ),
  );
  await assert.rejects(
    openBroker("amqp:/127.0.0.1:1//"),
    /lacks the \/\/ after "amqp:": write it as amqp:\/\/127\.0\.0\.1:1\/\//,
  );
  await assert.rejects(
    openBackend("redis:/:s3cret@127.0.0.1:1/0"),
    new TypeError(
      'The result backend URL lacks the // after "redis:": write it as redis://:***@127.0.0.1:1/0',
    ),
  );
  await assert.rejects(openScheduleStore("kv:beat.db"), /write it as kv:\/\/beat\.db/);
});

Deno.test("connect errors: an unknown scheme names every scheme that is accepted", async () => {
  await assert.rejects(
    openBroker("ftp://host/x"),
    new TypeError(
      'Unsupported broker URL "ftp://…": use redis://, rediss://, sentinel://, ' +
        "redis+cluster://, rediss+cluster://, amqp://, amqps:// or kv://",
    ),
  );
  await assert.rejects(
    openBackend("amqp://guest@127.0.0.1//"),
    new TypeError(
      'Unsupported result backend URL "amqp://…": use redis://, rediss://, sentinel://, ' +
        "redis+cluster://, rediss+cluster://, rpc:// or kv://",
    ),
  );
  await assert.rejects(
    openScheduleStore("127.0.0.1:6379"),
    /beat store URL "127\.0\.0\.1:6379" has no scheme: write it as a URL, e\.g\. redis:\/\//,
  );
  await assert.rejects(openBroker("constructor://x"), /Unsupported broker URL "constructor:\/\/…"/);
});

Deno.test("connect errors: a host name without --allow-net for it names the flag, not DNS", async () => {
  // Deno refuses the look-up of a name it may not connect to with
  // `getaddrinfo EPERM <host>`: Redis said "the host name of localhost:6379
  // does not resolve (DNS: …)", RabbitMQ "getaddrinfo EPERM localhost".
  const dir = await Deno.makeTempDir({ prefix: "celeriac-denied-" });
  const script = `${dir}/send.ts`;
  await Deno.writeTextFile(
    script,
    `import { Celery } from ${JSON.stringify(new URL("../mod.ts", import.meta.url).href)};
const app = new Celery({ broker: Deno.args[0], backend: null });
try {
  await app.sendTask("t.any", []);
} catch (err) {
  console.log(JSON.stringify({ message: String((err as Error).message), transient: (err as { transient?: boolean }).transient }));
}
await app.close();
`,
  );
  try {
    for (
      const [url, flag] of [
        ["redis://localhost:6399/0", "--allow-net=localhost:6399"],
        ["redis://localhost/0", "--allow-net=localhost:6379"],
        ["amqp://guest:guest@localhost:5673//", "--allow-net=localhost:5673"],
      ]
    ) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--config", "deno.json", "--allow-env", script, url],
        cwd: new URL("../", import.meta.url).pathname,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      const line = text.split("\n").find((l) => l.startsWith("{"));
      assert.ok(line, `${url}: ${text}\n${new TextDecoder().decode(out.stderr)}`);
      const { message, transient } = JSON.parse(line);
      assert.match(message, /Deno denied the look-up of localhost: no net permission/, url);
      assert.ok(message.includes(`Run with ${flag}`), `${url}: ${message}`);
      assert.doesNotMatch(message, /does not resolve/);
      assert.equal(transient, false, "retrying cannot help");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connect errors: a Sentinel URL where no Sentinel answers fails the connect and says why", async () => {
  // A first connect through Sentinels nobody answers on retried silently for
  // ever (a redis:// URL fails at once); ioredis named only "Connection is closed".
  using ports = reservePorts();
  const url = `sentinel://127.0.0.1:${ports.base}/0?master_name=mymaster`;
  const started = performance.now();
  await assert.rejects(
    Promise.race([
      openBroker(url),
      new Promise((_, reject) => setTimeout(() => reject(new Error("still connecting")), 15_000)),
    ]),
    rejectsWith(
      new RegExp(`no Sentinel answered \\(127\\.0\\.0\\.1:${ports.base}: Connection refused`),
      true,
    ),
  );
  assert.ok(performance.now() - started < 10_000, "within a few rounds");
});

Deno.test("connect errors: a refused connection through Sentinels names the address refused", () => {
  // The master the Sentinels still named during a failover: "nothing listens on the server".
  const { reason } = describeRedisFailure(
    new Error("connect ECONNREFUSED 127.0.0.1:16390"),
    "sentinel://:pw@10.0.0.1:26379;sentinel://10.0.0.2:26379/0?master_name=mymaster",
  );
  assert.match(reason, /^connection refused: nothing listens on 127\.0\.0\.1:16390 \(/);
});

Deno.test("connect errors: a TLS certificate Deno does not trust says how to trust its CA", () => {
  // rediss:// to a server whose certificate a private CA signed: the message said to check that
  // the server runs and the URL is right, and nothing of DENO_CERT.
  for (
    const message of [
      "self-signed certificate in certificate chain",
      "invalid peer certificate: UnknownIssuer",
    ]
  ) {
    const failure = describeRedisFailure(new Error(message), "rediss://cache:6380/0");
    assert.match(failure.reason, /^the TLS certificate of cache:6380 is not trusted \(/);
    assert.match(failure.hint ?? "", /DENO_CERT=\/path\/to\/ca\.pem/);
    assert.equal(failure.transient, false, "a setting fixes it: the worker does not retry");
  }
});

Deno.test("connect errors: a wrong-server error says where its URL came from too", () => {
  // Before: the wrong-server branch replaced what was explained, the source with it.
  const err = new BrokerConnectionError(
    "redis://127.0.0.1:5672/0",
    new WrongServerError("redis", "amqp", "127.0.0.1", 5672),
  );
  const out = withUrlSource(err, "CELERY_BROKER_URL") as BrokerConnectionError;
  assert.match(out.message, /speaks .* \(set by CELERY_BROKER_URL\)$/);
  assert.equal(out.source, "CELERY_BROKER_URL");
  assert.equal(out.transient, false);
});
