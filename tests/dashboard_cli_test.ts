/**
 * `worker.ts dashboard` and `worker -D` as processes: they serve the UI
 * and /metrics, stop on SIGTERM with exit 0, and refuse an address off the
 * loopback interface without auth (a usage error: exit 2), or a port in use
 * (exit 1), with a message that says what to change.
 */

import assert from "node:assert/strict";
import { reservePorts } from "./helpers/ports.ts";
import { Proc, runCli } from "./helpers/procs.ts";

/** The niceness of a process (field 19 of /proc/PID/stat). */
function niceOf(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
}

/** The niceness of every thread of a process, by thread name. */
function threadNices(pid: number): string[] {
  return [...Deno.readDirSync(`/proc/${pid}/task`)].map((e) => {
    const stat = Deno.readTextFileSync(`/proc/${pid}/task/${e.name}/stat`);
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    return `${comm}: ${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]}`;
  });
}

function start(args: string[]): Proc {
  return Proc.start("dashboard", Deno.execPath(), [
    "run",
    "-A",
    "worker.ts",
    ...args,
    "--app",
    "./examples/tasks.ts",
    "--broker",
    "kv://:memory:",
  ]);
}

Deno.test("worker.ts dashboard serves, and stops on SIGTERM with exit 0", async () => {
  using ports = reservePorts();
  const port = ports.base;
  const p = start(["dashboard", "--port", String(port), "--read-only"]);
  try {
    await p.waitFor(new RegExp(`Dashboard on http://127\\.0\\.0\\.1:${port}`));
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.match(await page.text(), /Celeriac dashboard/);
    const session = await (await fetch(`http://127.0.0.1:${port}/api/session`)).json();
    assert.equal(session.readOnly, true);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, /^celeriac_queue_length\{queue="celery"\} 0$/m);
    assert.equal(niceOf(p.child.pid), 10, "the standalone dashboard yields the CPU to workers");
    const nices = threadNices(p.child.pid);
    assert.ok(nices.length > 1, `one thread only: ${nices}`);
    assert.deepEqual(nices.filter((t) => !t.endsWith(": 10")), [], "every thread yields it");
  } finally {
    const status = await p.stop("SIGTERM");
    assert.equal(status.code, 0, p.output);
  }
});

Deno.test("worker -D serves the dashboard from the worker process", async () => {
  using ports = reservePorts();
  const port = ports.base;
  const p = start(["-D", "--port", String(port), "-c", "1"]);
  try {
    await p.waitFor(/ ready: /);
    await p.waitFor(/Dashboard on /);
    const r = await fetch(`http://127.0.0.1:${port}/api/queues`);
    assert.deepEqual(await r.json(), { queues: [{ name: "celery", depth: 0 }] });
    assert.equal(niceOf(p.child.pid), 0, "a worker serving the dashboard keeps its priority");
  } finally {
    assert.equal((await p.stop("SIGTERM")).code, 0, p.output);
  }
});

Deno.test("worker.ts dashboard --nice: 0 keeps normal priority; out of 0..19 is refused", async () => {
  using ports = reservePorts();
  const port = ports.base;
  const p = start(["dashboard", "--port", String(port), "--nice", "0"]);
  try {
    await p.waitFor(/Dashboard on /);
    assert.equal(niceOf(p.child.pid), 0);
  } finally {
    assert.equal((await p.stop("SIGTERM")).code, 0, p.output);
  }
  const bad = start(["dashboard", "--port", String(port + 1), "--nice", "20"]);
  assert.notEqual((await bad.child.status).code, 0);
  await bad.stop();
  assert.match(bad.output, /--nice needs a whole number 0\.\.19, got "20"/);
});

Deno.test("worker.ts dashboard: off loopback without auth exits 2, a port in use 1", async () => {
  using ports = reservePorts();
  const open = start(["dashboard", "--address", "0.0.0.0", "--port", String(ports.base)]);
  assert.equal((await open.child.status).code, 2);
  await open.stop();
  assert.match(open.output, /needs authentication there, pass --basic-auth user:pass or --token/);
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (taken.addr as Deno.NetAddr).port;
    const p = start(["dashboard", "--port", String(port)]);
    assert.equal((await p.child.status).code, 1);
    await p.stop();
    assert.match(
      p.output,
      new RegExp(`Port ${port} on 127\\.0\\.0\\.1 is in use: pick another with --port`),
    );
  } finally {
    taken.close();
  }
});

Deno.test("worker.ts dashboard: a broker only new settings can open exits 1 at once", async () => {
  // As the worker does: no --allow-write for the KV file (or no --unstable-kv, a wrong
  // password) is not retried while the page shows nothing.
  using ports = reservePorts();
  const dir = await Deno.makeTempDir({ prefix: "celeriac-dash-noperm-" });
  const p = Proc.start("dashboard", Deno.execPath(), [
    "run",
    "--allow-read=.",
    "--allow-env",
    `--allow-net=127.0.0.1:${ports.base}`,
    "worker.ts",
    "dashboard",
    "--port",
    String(ports.base),
    "--app",
    "./examples/tasks.ts",
    "--broker",
    `kv://${dir}/broker.sqlite`,
  ]);
  try {
    const status = await Promise.race([
      p.finished(),
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 15_000)),
    ]);
    assert.ok(status, `still serving after 15 s:\n${p.output}`);
    assert.equal(status.code, 1, p.output);
    assert.match(p.output, /Requires write access to .*--allow-write/);
    assert.doesNotMatch(p.output, /reconnecting/);
  } finally {
    await p.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("examples/dashboard.ts serves the dashboard of the example app", async () => {
  using ports = reservePorts();
  const port = ports.base;
  const p = Proc.start("example", Deno.execPath(), [
    "run",
    `--allow-net=127.0.0.1:${port}`,
    "--allow-env",
    "examples/dashboard.ts",
  ], { env: { PORT: String(port), READ_ONLY: "1", CELERY_BROKER_URL: "kv://:memory:" } });
  try {
    await p.waitFor(new RegExp(`dashboard on http://127\\.0\\.0\\.1:${port}`));
    const session = await (await fetch(`http://127.0.0.1:${port}/api/session`)).json();
    assert.equal(session.readOnly, true);
  } finally {
    assert.equal((await p.stop("SIGINT")).code, 0, p.output);
  }
});

Deno.test("worker.ts dashboard without --allow-env serves and names the flag for its credential variables", async () => {
  using ports = reservePorts();
  const p = Proc.start("dashboard", Deno.execPath(), [
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-net",
    "--unstable-kv",
    "worker.ts",
    "dashboard",
    "--port",
    String(ports.base),
    "--nice",
    "0",
    "--app",
    "./examples/tasks.ts",
    "--broker",
    "kv://:memory:",
  ]);
  try {
    await p.waitFor(/Dashboard on /);
    assert.match(
      p.output,
      /CELERIAC_DASHBOARD_BASIC_AUTH, CELERIAC_DASHBOARD_TOKEN not read, no credentials from them \(run with --allow-env\)/,
    );
    assert.doesNotMatch(p.output, /Requires env access/);
  } finally {
    assert.equal((await p.stop("SIGTERM")).code, 0, p.output);
  }
});

Deno.test("dashboard cli: no net permission for its listen address names the flag and says so", async () => {
  // Deno's bare "Requires net access to 127.0.0.1:PORT" did not say it was the dashboard's address.
  using ports = reservePorts();
  const port = ports.base;
  const ran = await runCli(["dashboard", "--port", String(port), "-b", "kv://:memory:"], {
    permissions: ["--allow-read=.", "--allow-env"],
  });
  assert.notEqual(ran.code, 0);
  assert.match(
    ran.stderr,
    new RegExp(
      `The dashboard cannot listen on 127\\.0\\.0\\.1:${port}, its listen address: .*` +
        `Run deno with --allow-net=127\\.0\\.0\\.1:${port} `,
    ),
  );
});

Deno.test("dashboard cli: an IPv6 listen address is named in brackets, the --allow-net form Deno takes", async () => {
  // "--allow-net=::1:PORT" is refused by Deno ("invalid empty host"); "[::1]:PORT" works.
  using ports = reservePorts();
  const port = ports.base;
  const ran = await runCli([
    "dashboard",
    "--address",
    "::1",
    "--port",
    String(port),
    "-b",
    "kv://:memory:",
  ], {
    permissions: ["--allow-read=.", "--allow-env"],
  });
  assert.notEqual(ran.code, 0);
  assert.match(
    ran.stderr,
    new RegExp(
      `cannot listen on \\[::1\\]:${port}, .*Run deno with --allow-net=\\[::1\\]:${port} `,
    ),
  );
});
