/**
 * The dashboard behind a reverse proxy: under a path prefix the proxy
 * strips (`/ops/` → `/`), the UI loads its files and API relative to its
 * page (in Chromium, through a small proxy of the test's own); behind a
 * proxy that ends TLS, actions from the https page pass the Origin check
 * (the scheme differs, the host is the one asked for).
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { Dashboard } from "../dashboard.ts";
import { launchChromium, WITHOUT_CHROMIUM } from "./helpers/browser.ts";
import { nav } from "./helpers/dashboard.ts";

async function withDashboard(
  fn: (url: string, app: Celery) => Promise<void>,
): Promise<void> {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  const d = new Dashboard({
    app,
    port: 0,
    allowedHosts: ["dash.example.com"],
    events: async function* () {},
    enableEvents: false,
    inspector: null,
    queues: ["px_extra"],
  });
  const { url } = await d.start();
  try {
    await fn(url, app);
  } finally {
    await d.stop();
    await app.close();
  }
}

/**
 * POST /api/parked/requeue with these headers, as raw HTTP/1.1 (fetch sets Host itself);
 * resolves with the status.
 */
async function requeue(url: string, headers: Record<string, string>): Promise<number> {
  const session = await (await fetch(`${url}/api/session`)).json();
  const lines = [
    "POST /api/parked/requeue HTTP/1.1",
    ...Object.entries({
      "content-type": "application/json",
      "content-length": "2",
      "x-csrf-token": session.csrfToken,
      connection: "close",
      ...headers,
    }).map(([k, v]) => `${k}: ${v}`),
  ];
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(url).port) });
  await conn.write(new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n{}`));
  const answer = await new Response(conn.readable).text();
  return Number(answer.split(" ", 2)[1]);
}

Deno.test("dashboard behind a proxy ending TLS: actions from the https page pass", async () => {
  await withDashboard(async (url) => {
    const cases: [Record<string, string>, number][] = [
      [{ host: "dash.example.com", origin: "https://dash.example.com" }, 200],
      [{
        host: "127.0.0.1:5555",
        "x-forwarded-host": "dash.example.com",
        origin: "https://dash.example.com",
      }, 200],
      [{ host: "dash.example.com:8443", origin: "https://dash.example.com:8443" }, 200],
      [{ host: "dash.example.com", origin: "https://evil.example" }, 403],
      [{ host: "dash.example.com", origin: "https://dash.example.com:8443" }, 403],
      [{ host: "dash.example.com", origin: "null" }, 403],
      // a name not in allowedHosts (DNS rebinding), even with Origin matching
      [{ host: "evil.example", origin: "https://evil.example" }, 403],
      [{
        host: "127.0.0.1:5555",
        "x-forwarded-host": "evil.example",
        origin: "https://evil.example",
      }, 403],
    ];
    for (const [headers, status] of cases) {
      assert.equal(await requeue(url, headers), status, JSON.stringify(headers));
    }
  });
});

/**
 * A reverse proxy serving `target` under `/ops/` (the prefix stripped), naming the host asked
 * for in X-Forwarded-Host (as Caddy does, and nginx with `proxy_set_header X-Forwarded-Host`).
 */
function prefixProxy(target: string): { url: string; close(): Promise<void> } {
  const ac = new AbortController();
  const server = Deno.serve({ port: 0, signal: ac.signal, onListen: () => {} }, async (req) => {
    const u = new URL(req.url);
    if (!u.pathname.startsWith("/ops/")) return new Response("not here", { status: 404 });
    const headers = new Headers(req.headers);
    headers.set("x-forwarded-host", u.host);
    return await fetch(`${target}${u.pathname.slice(4)}${u.search}`, {
      method: req.method,
      headers,
      body: req.body,
      redirect: "manual",
      signal: req.signal,
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/ops/`,
    close: async () => {
      ac.abort();
      await server.finished;
    },
  };
}

Deno.test({
  name: "dashboard under a path prefix: pages, live stream and actions in Chromium",
  ignore: WITHOUT_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withDashboard(async (url, app) => {
      await app.sendTask("px.a", [], { queue: "px_extra" });
      await app.sendTask("px.a", [], { queue: "px_extra" });
      const proxy = prefixProxy(url);
      const browser = await launchChromium();
      try {
        const page = await browser.context.newPage();
        const errors: string[] = [];
        page.on("pageerror", (e) => errors.push(e.message));
        page.on("response", (r) => r.status() >= 400 && errors.push(`${r.status()} ${r.url()}`));
        await page.goto(proxy.url);
        await page.getByText("● live").waitFor({ timeout: 10_000 }).catch((err) => {
          throw new Error(`${err.message}; errors: ${errors.join(", ")}`);
        });
        await nav(page, "Queues");
        const row = page.locator('tr[data-queue="px_extra"]');
        await row.getByText("2", { exact: true }).waitFor();
        await row.getByRole("button", { name: "Purge…" }).click();
        const dialog = page.getByRole("dialog");
        await dialog.getByLabel("Queue name").fill("px_extra");
        await dialog.getByRole("button", { name: "Purge" }).click();
        await page.getByRole("status").filter({ hasText: "Purged 2 message(s) from px_extra" })
          .waitFor();
        assert.deepEqual(errors, []);
      } finally {
        await browser.close();
        await proxy.close();
      }
    });
  },
});
