/**
 * DNS rebinding: a web page whose domain its owner re-resolves to 127.0.0.1 is same-origin with
 * a dashboard on the loopback interface, and its requests carry that domain as `Host` (and as
 * `Origin`). Without authentication the dashboard answers loopback hosts only, plus those of
 * `allowedHosts` (`--allowed-host`); with authentication the check applies when `allowedHosts`
 * is given. Raw HTTP/1.1 on a real server, since fetch sets `Host` itself.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard, type DashboardOptions, DashboardOptionsError } from "../dashboard.ts";
import { dashboardFromFlags } from "../src/cli/dashboard.ts";
import { UsageError } from "../src/cli/exit_codes.ts";

async function withDashboard(
  options: Partial<DashboardOptions>,
  fn: (port: number) => Promise<void>,
): Promise<void> {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const d = new Dashboard({
    app,
    port: 0,
    events: async function* () {
      yield {
        type: "task-received",
        hostname: "w@h",
        timestamp: Date.now() / 1000,
        uuid: "t1",
        name: "n",
        args: "('secret',)",
        kwargs: "{}",
      };
    },
    enableEvents: false,
    inspector: null,
    ...options,
  });
  const { url } = await d.start();
  try {
    await fn(Number(new URL(url).port));
  } finally {
    await d.stop();
    await app.close();
  }
}

/** One raw request; resolves with the status and the body. */
async function raw(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body = "",
): Promise<{ status: number; body: string }> {
  const lines = [
    `${method} ${path} HTTP/1.1`,
    ...Object.entries({
      ...(body ? { "content-type": "application/json" } : {}),
      "content-length": String(new TextEncoder().encode(body).length),
      connection: "close",
      ...headers,
    }).map(([k, v]) => `${k}: ${v}`),
  ];
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n${body}`));
  const answer = await new Response(conn.readable).text();
  return {
    status: Number(answer.split(" ", 2)[1]),
    body: answer.slice(answer.indexOf("\r\n\r\n") + 4),
  };
}

function refusedHost(res: { status: number; body: string }, host: string): void {
  assert.equal(res.status, 403, res.body);
  const error = JSON.parse(res.body).error;
  assert.equal(error.code, "host_not_allowed");
  assert.match(error.message, new RegExp(`^Host "${host}" is not one this dashboard answers`));
  assert.match(error.message, /--allowed-host /);
}

Deno.test("dashboard without auth: a rebound domain as Host is refused, loopback names pass", async () => {
  await withDashboard({}, async (port) => {
    const evil = `evil.example:${port}`;
    refusedHost(await raw(port, "GET", "/api/session", { host: evil }), evil);
    refusedHost(await raw(port, "GET", "/api/tasks/t1", { host: evil }), evil);
    refusedHost(await raw(port, "GET", "/", { host: evil }), evil);
    refusedHost(await raw(port, "GET", "/metrics", { host: evil }), evil);
    refusedHost(await raw(port, "GET", "/api/stream", { host: evil }), evil);
    const session = await raw(port, "GET", "/api/session", { host: `127.0.0.1:${port}` });
    assert.equal(session.status, 200);
    const csrfToken = JSON.parse(session.body).csrfToken as string;
    // Even with the token, an action from the rebound page (Host and Origin its domain) is refused.
    const purge = await raw(port, "POST", "/api/queues/celery/purge", {
      host: evil,
      origin: `http://${evil}`,
      "x-csrf-token": csrfToken,
    }, JSON.stringify({ confirm: "celery" }));
    refusedHost(purge, evil);
    // A forwarded host is checked too.
    refusedHost(
      await raw(port, "GET", "/api/session", {
        host: `127.0.0.1:${port}`,
        "x-forwarded-host": "evil.example",
      }),
      "evil.example",
    );
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, "127.0.0.2"]) {
      assert.equal((await raw(port, "GET", "/api/overview", { host })).status, 200, host);
    }
  });
});

Deno.test("dashboard allowedHosts: a proxy's name is answered, with any port or the one given", async () => {
  await withDashboard({ allowedHosts: ["Dash.Example.com", "ops.example:8443"] }, async (port) => {
    for (const host of ["dash.example.com", "dash.example.com:8080", "ops.example:8443"]) {
      assert.equal((await raw(port, "GET", "/api/overview", { host })).status, 200, host);
    }
    refusedHost(await raw(port, "GET", "/api/overview", { host: "ops.example" }), "ops.example");
    const other = await raw(port, "GET", "/api/overview", { host: "evil.example" });
    refusedHost(other, "evil.example");
    assert.match(JSON.parse(other.body).error.message, /and Dash\.Example\.com, ops\.example:8443/);
  });
});

Deno.test("dashboard with auth: any Host unless allowedHosts is given", async () => {
  const token = "t0ken-of-sixteen-chars";
  const authorization = `Bearer ${token}`;
  await withDashboard({ auth: { token } }, async (port) => {
    const res = await raw(port, "GET", "/api/overview", {
      host: "dash.example.com",
      authorization,
    });
    assert.equal(res.status, 200);
  });
  await withDashboard({ auth: { token }, allowedHosts: ["dash.example.com"] }, async (port) => {
    const host = "dash.example.com";
    assert.equal((await raw(port, "GET", "/api/overview", { host, authorization })).status, 200);
    refusedHost(
      await raw(port, "GET", "/api/overview", { host: "evil.example", authorization }),
      "evil.example",
    );
  });
});

Deno.test("dashboard allowedHosts: an entry that is no host name is refused", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  for (const bad of ["https://dash.example.com", "dash.example.com/ops", "", "a b"]) {
    assert.throws(() => new Dashboard({ app, allowedHosts: [bad] }), (err: unknown) => {
      assert.ok(err instanceof DashboardOptionsError);
      assert.equal(err.option, "allowedHosts");
      assert.match(err.message, /^allowedHosts needs a host name or host:port, got "/);
      return true;
    });
  }
  await assert.rejects(
    () => dashboardFromFlags(app, { "allowed-host": "dash.example.com,https://x" }),
    (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.match(
        err.message,
        /^--allowed-host needs a host name or host:port, got "https:\/\/x"/,
      );
      return true;
    },
  );
  await app.close();
});

Deno.test("dashboard: a malformed Host gets 400 bad_host JSON, with or without auth", async () => {
  const token = "t0ken-of-sixteen-chars";
  for (const auth of [undefined, { token }]) {
    await withDashboard({ auth }, async (port) => {
      for (const host of [`127.0.0.1:${port}, evil.example`, "x y"]) {
        const res = await raw(port, "GET", "/api/session", { host });
        assert.equal(res.status, 400, `${host}: ${res.body}`);
        const error = JSON.parse(res.body).error;
        assert.equal(error.code, "bad_host");
        assert.match(error.message, /^Host header ".*" is no host name: send one host name/);
      }
    });
  }
});

Deno.test("dashboard: /healthcheck answers OK without credentials and for any Host, as Flower's; /metrics keeps auth", async () => {
  const token = "t0ken-of-sixteen-chars";
  await withDashboard({ auth: { token }, allowedHosts: ["dash.example.com"] }, async (port) => {
    for (const host of [`127.0.0.1:${port}`, "10.1.2.3:5555"]) {
      const res = await raw(port, "GET", "/healthcheck", { host });
      assert.equal(res.status, 200, host);
      assert.equal(res.body, "OK");
    }
    const head = await raw(port, "HEAD", "/healthcheck", { host: "10.1.2.3" });
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    const post = await raw(port, "POST", "/healthcheck", { host: "10.1.2.3" });
    assert.equal(post.status, 405);
    const metrics = await raw(port, "GET", "/metrics", { host: "dash.example.com" });
    assert.equal(metrics.status, 401);
    const scraped = await raw(port, "GET", "/metrics", {
      host: "dash.example.com",
      authorization: `Bearer ${token}`,
    });
    assert.equal(scraped.status, 200);
    assert.match(scraped.body, /flower_events_total/);
  });
});
