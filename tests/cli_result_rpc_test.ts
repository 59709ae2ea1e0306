/**
 * `result` with the rpc:// backend says why it cannot work instead of
 * waiting for a reply that only the sending client could receive; `call`
 * with it warns that nothing can read the result later.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { runResult } from "../src/cli/call.ts";
import { runCli } from "./helpers/procs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ } from "./helpers/services.ts";

Deno.test("cli result: an rpc:// backend is refused with what to change, without connecting", async () => {
  // Port 1: nothing listens, so a connection attempt would fail differently.
  const app = new Celery({ broker: "amqp://guest:guest@127.0.0.1:1//", backend: "rpc://" });
  try {
    await assert.rejects(
      runResult(app, crypto.randomUUID(), { timeout: "0.5" }),
      (err: Error) => {
        assert.ok(err instanceof TypeError, String(err));
        assert.match(err.message, /rpc:\/\/ backend: it sends each result only to the client/);
        assert.match(err.message, /send it with call … --wait to get it there/);
        assert.match(err.message, /--backend redis:\/\//);
        return true;
      },
    );
  } finally {
    await app.close();
  }
});

Deno.test("cli result: no result backend at all names --backend, not new Celery(...)", async () => {
  // A RabbitMQ or Redis broker has no result backend unless one is set.
  const app = new Celery({ broker: "amqp://guest:guest@127.0.0.1:1//", backend: null });
  try {
    await assert.rejects(
      runResult(app, crypto.randomUUID(), { timeout: "0.5" }),
      (err: Error) => {
        assert.ok(err instanceof TypeError, String(err));
        assert.match(err.message, /result needs the result backend the worker stores to/);
        assert.match(err.message, /--backend redis:\/\//);
        return true;
      },
    );
  } finally {
    await app.close();
  }
});

Deno.test({
  name: "cli result: call with the rpc:// backend warns that nothing can read the result later",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  const vhost = await createVhost("call-rpc");
  const run = (backend?: string) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "worker.ts",
        "call",
        "tasks.add",
        "--args",
        "[1, 2]",
        "--broker",
        vhost.url(),
        ...(backend === undefined ? [] : ["--backend", backend]),
      ],
      cwd: new URL("../", import.meta.url).pathname,
      env: { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "" },
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).output();
  try {
    const out = await run("rpc://");
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const id = stdout.trim();
    assert.match(id, /^[0-9a-f-]{36}$/, "the id alone on stdout, for scripts");
    assert.match(
      stderr,
      new RegExp(
        `^warning: the result backend is rpc://: the result of ${id} goes only to this ` +
          "command's own reply queue, which is gone when it exits, so nothing can read it later",
      ),
    );
    assert.match(stderr, /To get it, have this command wait for it: call … --wait/);
    assert.match(stderr, /--backend redis:\/\/127\.0\.0\.1:6379\/0/);
    const stored = await run();
    assert.equal(stored.code, 0);
    assert.equal(new TextDecoder().decode(stored.stderr), "", "no backend: nothing to warn of");
  } finally {
    await vhost.remove();
  }
});

Deno.test("cli call --backend rpc:// with a -b that is no amqp:// broker: usage error 2, nothing sent", async () => {
  // Port 1: nothing listens; the flags are refused before anything connects.
  for (const more of [[], ["--wait"]]) {
    const out = await runCli(
      ["call", "t.add", "-b", "redis://127.0.0.1:1/0", "--backend", "rpc://", ...more],
    );
    assert.equal(out.code, 2, out.stdout + out.stderr);
    assert.match(
      out.stderr,
      /--backend with -b: The rpc:\/\/ result backend sends results through RabbitMQ: use an amqp:\/\/ broker \(got "redis:\/\/…"\)/,
    );
    assert.equal(out.stdout, "", "no task id: nothing was sent");
  }
});
