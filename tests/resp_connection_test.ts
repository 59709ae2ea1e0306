import assert from "node:assert/strict";
import { configure, reset } from "@logtape/logtape";
import { parseRedisUrl } from "../src/broker/redis_url.ts";
import {
  RedisConnectionError,
  RespConnection,
  type RespConnectionOptions,
} from "../src/broker/resp_connection.ts";
import { RedisReplyError, type RespValue } from "../src/broker/resp_reader.ts";
import { REDIS_URL } from "./helpers/redis.ts";
import { command, privateServers, reservePorts, waitUntil } from "./helpers/redis_servers.ts";
import { LossyProxy } from "./helpers/lossy_proxy.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";

const shared = parseRedisUrl(REDIS_URL);
const enc = new TextEncoder();
const dec = new TextDecoder();
const at = (o: Partial<RespConnectionOptions> = {}): RespConnectionOptions => ({
  host: shared.host,
  port: shared.port,
  password: shared.password,
  username: shared.username,
  ...o,
});

/** A subscriber to `pattern` collecting `[channel, payload]` as text. */
function subscriber(pattern: string, o: Partial<RespConnectionOptions> = {}) {
  const got: [string, string][] = [];
  let wake: (() => void) | null = null;
  const conn = new RespConnection(at({
    patterns: [pattern],
    onPush: (push: RespValue[]) => {
      got.push([dec.decode(push[2] as Uint8Array), dec.decode(push[3] as Uint8Array)]);
      wake?.();
    },
    ...o,
  }));
  const until = async (n: number) => {
    while (got.length < n) await new Promise<void>((r) => wake = r);
  };
  return { conn, got, until };
}

Deno.test("RESP connection: PUBLISH reaches a PSUBSCRIBE whole and in order, 2 MB ones too", async () => {
  const base = `celeriac-test-resp-${crypto.randomUUID()}`;
  const sub = subscriber(`${base}/*`);
  const pub = new RespConnection(at({ name: "celeriac-test-pub" }));
  try {
    await sub.conn.connect();
    assert.equal(sub.conn.state, "ready");
    const big = "x".repeat(2 * 1024 * 1024);
    const counts = await Promise.all([
      pub.publish(enc.encode(`${base}/a`), enc.encode("first")),
      pub.publish(enc.encode(`${base}/b`), enc.encode(big)),
      pub.publish(enc.encode(`${base}/a`), enc.encode("é\r\n")),
      pub.publish(enc.encode(`other-${base}`), enc.encode("not mine")),
    ]);
    assert.deepEqual(counts, [1, 1, 1, 0]);
    await sub.until(3);
    assert.deepEqual(sub.got.map(([c, p]) => [c, p.length]), [
      [`${base}/a`, 5],
      [`${base}/b`, big.length],
      [`${base}/a`, 3],
    ]);
    assert.equal(sub.got[1][1], big);
    assert.equal(sub.got[2][1], "é\r\n");
  } finally {
    await pub.close();
    await sub.conn.close();
  }
});

Deno.test("RESP connection: SELECT and CLIENT SETNAME apply; error replies are RedisReplyErrors", async () => {
  const conn = new RespConnection(at({ db: 7, name: "celeriac-test-resp" }));
  try {
    const info = dec.decode(await conn.command(["CLIENT", "INFO"]) as Uint8Array);
    assert.match(info, / db=7 /);
    assert.match(info, / name=celeriac-test-resp /);
    await assert.rejects(
      conn.command(["NOSUCHCOMMAND"]),
      (err: unknown) =>
        err instanceof RedisReplyError && err.name === "RedisReplyError" && err.code === "ERR",
    );
    assert.equal(await conn.command(["PING"]), "PONG");
  } finally {
    await conn.close();
  }
});

Deno.test("RESP connection: close() waits for the replies due; then commands fail with a code", async () => {
  const conn = new RespConnection(at());
  await conn.connect();
  const sent = conn.publish(
    enc.encode(`celeriac-test-resp-${crypto.randomUUID()}`),
    enc.encode("x"),
  );
  await conn.close();
  assert.equal(await sent, 0);
  assert.equal(conn.state, "closed");
  await assert.rejects(
    conn.command(["PING"]),
    (err: unknown) =>
      err instanceof RedisConnectionError && err.name === "RedisConnectionError" &&
      err.code === "REDIS_CONNECTION",
  );
});

Deno.test("RESP connection: an aborted signal closes it", async () => {
  const stop = new AbortController();
  const conn = new RespConnection(at({ signal: stop.signal }));
  await conn.connect();
  stop.abort();
  await waitUntil("the close", () => Promise.resolve(conn.state === "closed"), 5000);
  await assert.rejects(conn.command(["PING"]), RedisConnectionError);
});

Deno.test("RESP connection: after a cut, it reconnects and subscribes again", async () => {
  const proxy = TcpProxy.start({ hostname: shared.host, port: shared.port });
  const base = `celeriac-test-resp-${crypto.randomUUID()}`;
  const sub = subscriber(`${base}/*`, { port: proxy.port, host: "127.0.0.1", maxDelayMs: 100 });
  const viaProxy = new RespConnection(at({ port: proxy.port, host: "127.0.0.1", maxDelayMs: 100 }));
  const direct = new RespConnection(at());
  try {
    await sub.conn.connect();
    assert.equal(await viaProxy.publish(enc.encode(`${base}/x`), enc.encode("before")), 1);
    await sub.until(1);
    await proxy.cut();
    // The subscriber is back when a message published directly reaches it.
    let n = 0;
    await waitUntil("the subscriber to be back", async () => {
      await direct.publish(enc.encode(`${base}/x`), enc.encode(`after ${n++}`));
      return sub.got.length > 1;
    }, 10_000);
    assert.match(sub.got[1][1], /^after \d+$/);
    // The publisher behind the proxy publishes again once it has reconnected.
    await waitUntil("the publisher to be back", async () => {
      return await viaProxy.publish(enc.encode(`${base}/y`), enc.encode("again")) === 1;
    }, 10_000);
    assert.ok(proxy.accepted >= 4, `connections accepted: ${proxy.accepted}`);
  } finally {
    await Promise.all([sub.conn.close(), viaProxy.close(), direct.close()]);
    await proxy.close();
  }
});

Deno.test("RESP connection: a server that does not answer the greeting is given up; a later connect works", async () => {
  const proxy = LossyProxy.start({ hostname: shared.host, port: shared.port });
  const conn = new RespConnection(
    at({ port: proxy.port, host: "127.0.0.1", connectTimeoutMs: 200 }),
  );
  try {
    proxy.holdReplies();
    await assert.rejects(
      conn.connect(),
      (err: unknown) =>
        err instanceof RedisConnectionError && /did not answer within 200 ms/.test(err.message),
    );
    assert.equal(conn.state, "idle");
    proxy.cut();
    assert.equal(await conn.command(["PING"]), "PONG");
  } finally {
    await conn.close();
    proxy.close();
  }
});

Deno.test("RESP connection: with waitForReconnect a command sent while it reconnects waits for the attempt", async () => {
  const proxy = LossyProxy.start({ hostname: shared.host, port: shared.port });
  const o = { port: proxy.port, host: "127.0.0.1", minDelayMs: 1000, maxDelayMs: 1000 };
  const waiting = new RespConnection(at({ ...o, waitForReconnect: true }));
  const failing = new RespConnection(at(o));
  try {
    await Promise.all([waiting.connect(), failing.connect()]);
    proxy.cut();
    await waitUntil(
      "both to notice the cut",
      () => Promise.resolve(waiting.state === "waiting" && failing.state === "waiting"),
      5000,
    );
    await assert.rejects(failing.command(["PING"]), /is down; reconnecting/);
    assert.equal(await waiting.command(["PING"]), "PONG");
  } finally {
    await Promise.all([waiting.close(), failing.close()]);
    proxy.close();
  }
});

Deno.test("RESP connection: with replyTimeoutMs, commands left without a reply drop the connection", async () => {
  const proxy = LossyProxy.start({ hostname: shared.host, port: shared.port });
  const o = { port: proxy.port, host: "127.0.0.1", minDelayMs: 20, maxDelayMs: 20 };
  const watched = new RespConnection(at({ ...o, replyTimeoutMs: 300 }));
  try {
    await watched.connect();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(watched.state, "ready", "an idle connection is not dropped");
    proxy.holdReplies();
    await assert.rejects(
      watched.command(["PING"]),
      (err: unknown) =>
        err instanceof RedisConnectionError && /sent no reply for 300 ms/.test(err.message),
    );
    proxy.cut();
    await waitUntil("it to be back", async () => await watched.command(["PING"]) === "PONG", 5000);
  } finally {
    await watched.close();
    proxy.close();
  }
});

Deno.test("RESP connection: a reply timeout does not count time this process's own event loop was blocked", async () => {
  const watched = new RespConnection(at({ replyTimeoutMs: 300 }));
  try {
    await watched.connect();
    const reply = watched.command(["PING"]);
    const end = Date.now() + 1_000;
    while (Date.now() < end) {
      // busy, as when encoding a message of many megabytes
    }
    assert.equal(await reply, "PONG");
    assert.equal(watched.state, "ready");
  } finally {
    await watched.close();
  }
});

Deno.test("RESP connection: AUTH with an ACL user or the default password; wrong ones are refused", async () => {
  const servers = await privateServers("resp", (s) => s.redis());
  const port = servers.base;
  await command(port, "ACL", "SETUSER", "alice", "on", ">pw", "~*", "&*", "+@all");
  await command(port, "CONFIG", "SET", "requirepass", "s3cret");
  const local = { host: "127.0.0.1", port, reconnect: false };
  try {
    for (const o of [{ password: "s3cret" }, { username: "alice", password: "pw" }]) {
      const conn = new RespConnection({ ...local, ...o, db: 2 });
      assert.equal(await conn.command(["PING"]), "PONG");
      await conn.close();
    }
    const cases: [Partial<RespConnectionOptions>, string][] = [
      [{ username: "alice", password: "nope" }, "WRONGPASS"],
      [{}, "NOAUTH"],
      [{ password: "s3cret", db: 99 }, "ERR"],
    ];
    for (const [o, code] of cases) {
      const conn = new RespConnection({ ...local, ...o, patterns: ["p"] });
      await assert.rejects(
        conn.connect(),
        (err: unknown) => err instanceof RedisReplyError && err.code === code,
        code,
      );
      assert.equal(conn.state, "idle");
      await conn.close();
    }
  } finally {
    await servers.stop();
  }
});

Deno.test("RESP connection: TLS (rediss://) with a private authority", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-resp-tls-" });
  const ssl = async (...args: string[]) => {
    const r = await new Deno.Command("openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
      .output();
    if (!r.success) throw new Error(`openssl ${args[0]}: ${dec.decode(r.stderr)}`);
  };
  try {
    await ssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=test ca",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
    );
    await ssl(
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=localhost",
      "-keyout",
      "server.key",
      "-out",
      "server.csr",
    );
    await Deno.writeTextFile(`${dir}/ext.cnf`, "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    await ssl(
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      "ext.cnf",
      "-out",
      "server.pem",
    );
    // Released (at the end of this block) once the server is gone.
    using ports = reservePorts();
    const port = ports.base;
    const child = new Deno.Command("redis-server", {
      args: [
        "--port",
        "0",
        "--tls-port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
        dir,
        "--tls-cert-file",
        `${dir}/server.pem`,
        "--tls-key-file",
        `${dir}/server.key`,
        "--tls-ca-cert-file",
        `${dir}/ca.pem`,
        "--tls-auth-clients",
        "no",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const caCerts = [await Deno.readTextFile(`${dir}/ca.pem`)];
      let conn: RespConnection | undefined;
      await waitUntil("the TLS server", async () => {
        conn = new RespConnection({ host: "127.0.0.1", port, tls: true, caCerts, db: 1 });
        try {
          await conn.connect();
          return true;
        } catch {
          await conn.close();
          return false;
        }
      }, 10_000);
      assert.equal(await conn!.command(["PING"]), "PONG");
      await conn!.close();
      const untrusted = new RespConnection({ host: "127.0.0.1", port, tls: true });
      await assert.rejects(untrusted.connect(), RedisConnectionError);
      await untrusted.close();
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RESP connection: with pingEveryMs, PINGs in subscribed mode are replies in turn with SUBSCRIBEs, not messages", async () => {
  const channel = `celeriac-test-ping-${crypto.randomUUID()}`;
  const heard: string[] = [];
  const conn = new RespConnection(at({
    replyTimeoutMs: 1000,
    pingEveryMs: 2,
    onPush: (push: RespValue[]) => heard.push(dec.decode(push[2] as Uint8Array)),
  }));
  const publisher = new RespConnection(at());
  // A reply taken by the wrong command leaves one waiting for good: fail instead.
  const within = <T>(p: Promise<T>) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("no reply within 1 s")), 1000);
    });
    return Promise.race([p, late]).finally(() => clearTimeout(timer));
  };
  try {
    await conn.connect();
    // SUBSCRIBEs sent while the PINGs go: each gets its own confirmation, in order.
    for (let i = 0; i < 20; i++) {
      const reply = await within(conn.command(["SUBSCRIBE", `${channel}-${i}`])) as Uint8Array[];
      assert.equal(dec.decode(reply[0]), "subscribe");
      assert.equal(dec.decode(reply[1]), `${channel}-${i}`);
      assert.equal(reply[2], i + 1);
      await new Promise((r) => setTimeout(r, 3));
    }
    await publisher.publish(enc.encode(`${channel}-7`), enc.encode("hello"));
    await waitUntil("the message", () => Promise.resolve(heard.length === 1), 2000);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(heard, ["hello"], "only the message was a push");
    assert.equal(conn.state, "ready");
  } finally {
    await conn.close();
    await publisher.close();
  }
});

Deno.test("RESP connection: a connect a command starts while the reconnect loop is between attempts is used, not leaked", async () => {
  // A server answering each PING with +PONG, except the second connection's (the first
  // reconnect attempt), refused with an error reply; it counts the sockets still open.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sockets: Deno.Conn[] = [];
  let open = 0;
  const serve = async (sock: Deno.Conn, n: number) => {
    open++;
    const buf = new Uint8Array(4096);
    try {
      for (let got; (got = await sock.read(buf)) !== null;) {
        const pings = dec.decode(buf.subarray(0, got)).split("PING").length - 1;
        await sock.write(enc.encode((n === 1 ? "-ERR refused\r\n" : "+PONG\r\n").repeat(pings)));
      }
    } catch {
      // closed by the test
    } finally {
      open--;
    }
  };
  const accepting = (async () => {
    for await (const sock of listener) void serve(sock, sockets.push(sock) - 1);
  })();
  const conn = new RespConnection({
    host: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
    minDelayMs: 50,
    maxDelayMs: 50,
  });
  // The refused attempt is logged between the failed attempt and the loop's next wait: a
  // command sent from there finds the connection idle and starts a connect of its own.
  let sent: Promise<RespValue | Error> | undefined;
  await configure({
    reset: true,
    sinks: {
      hook: (r) => {
        if (!sent && /refused/.test(String(r.properties.error))) {
          sent = conn.command(["PING"]).catch((e) => e);
        }
      },
    },
    loggers: [
      { category: ["celeriac", "broker", "redis"], lowestLevel: "debug", sinks: ["hook"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  try {
    await conn.connect();
    sockets[0].close();
    await waitUntil(
      "the command sent from the log",
      () => Promise.resolve(sent !== undefined),
      5000,
    );
    // Before: it failed with 'closed while connecting', its socket left open beside the next attempt's.
    assert.equal(await sent, "PONG");
    assert.equal(conn.state, "ready");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(conn.state, "ready");
    assert.equal(await conn.command(["PING"]), "PONG");
    assert.equal(sockets.length, 3, "connections made: the first, the refused one, the command's");
    assert.equal(open, 1);
  } finally {
    await reset();
    await conn.close();
    listener.close();
    for (const s of sockets) {
      try {
        s.close();
      } catch {
        // closed already
      }
    }
    await accepting.catch(() => {});
  }
});

Deno.test({
  name: "resp connection: a server's connections dropping together are told once, and once back",
  ignore: WITHOUT_REDIS,
}, async () => {
  // Each connection warned '<role> connection ...: closed the connection; reconnecting' and said
  // 'connected again': 14 lines per Redis restart from a worker on one queue, 400 on 50 queues.
  const shared = parseRedisUrl(REDIS_URL);
  const proxy = TcpProxy.start({ hostname: shared.host, port: shared.port });
  const label = `redis://127.0.0.1:${proxy.port}/0`;
  const roles = ["wait", "wait", "wait", "consume", "result store"];
  const conns = roles.map((role) =>
    new RespConnection({
      host: "127.0.0.1",
      port: proxy.port,
      label,
      role,
      // The proxy accepts again at once: a reconnect delay that leaves a loaded host time to
      // see every connection drop before the first is back (else that one outage is two).
      minDelayMs: 200,
      maxDelayMs: 250,
    })
  );
  const records = await captureLogs("info");
  try {
    await Promise.all(conns.map((c) => c.connect()));
    assert.deepEqual(records.map(logLine), [], "a first connect says nothing");
    await proxy.cut();
    await waitUntil(
      "every connection back",
      () => Promise.resolve(proxy.accepted >= 10 && conns.every((c) => c.state === "ready")),
      5000,
    );
    const lines = records.map(logLine);
    const said = lines.join("\n");
    assert.equal(lines.length, 2, said);
    assert.match(
      lines[0]!,
      new RegExp(`^warning Redis \\w[\\w ]* connection ${label}: .*; reconnecting$`),
    );
    assert.match(
      lines[1]!,
      new RegExp(
        `^info Redis connections to ${label} connected again after [\\d.]+ s ` +
          `\\(.*wait ×3.*\\)$`,
      ),
    );
    assert.match(lines[1]!, /consume/);
    assert.match(lines[1]!, /result store/);
    // The next drop is told again.
    await proxy.cut();
    await waitUntil(
      "every connection back again",
      () => Promise.resolve(proxy.accepted >= 15 && conns.every((c) => c.state === "ready")),
      5000,
    );
    assert.equal(records.length, 4, records.map(logLine).join("\n"));
  } finally {
    await reset();
    await Promise.all(conns.map((c) => c.close()));
    await proxy.close();
  }
});
