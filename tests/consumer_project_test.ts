/**
 * Celeriac used the way a consumer uses it: a project outside the checkout
 * with its own deno.json (no "unstable" entry) that links the package (as a
 * JSR install would resolve it), running the README's commands.
 *
 * Without flags, the KV default says which flag to add, a worker on Redis
 * needs none; task sandboxes need --unstable-worker-options (Deno names it).
 */

import assert from "node:assert/strict";
import { Proc } from "./helpers/procs.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function consumerProject(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-consumer-" });
  await Deno.writeTextFile(
    `${dir}/deno.json`,
    JSON.stringify({
      links: [ROOT],
      imports: {
        "@celeriac/celeriac": "jsr:@celeriac/celeriac@^0.1.0",
        "@celeriac/celeriac/worker": "jsr:@celeriac/celeriac@^0.1.0/worker",
      },
    }),
  );
  await Deno.writeTextFile(
    `${dir}/tasks.ts`,
    `import { Celery } from "@celeriac/celeriac";
export const app = new Celery();
export const add = app.task("tasks.add", (a: number, b: number) => a + b);
`,
  );
  await Deno.writeTextFile(
    `${dir}/client.ts`,
    `import { add, app } from "./tasks.ts";
const r = await add.delay(2, 3);
console.log("sum", await r.get({ timeout: 20_000 }));
await app.close();
`,
  );
  return dir;
}

async function run(dir: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: dir,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

Deno.test("consumer project: the KV default without --unstable-kv says which flag to add", async () => {
  const dir = await consumerProject();
  try {
    const client = await run(dir, ["run", "-A", "client.ts"]);
    assert.notEqual(client.code, 0);
    assert.match(client.text, /BrokerConnectionError/);
    assert.match(client.text, /Deno KV is not enabled.*--unstable-kv.*"unstable": \["kv"\]/s);
    // No broker was set: the message says its URL is the default, and what sets one.
    assert.match(
      client.text,
      /\(set by the default, as no broker was given \(new Celery\(\{ broker \}\), CELERY_BROKER_URL or the command line's --broker\)\)/,
    );
    assert.doesNotMatch(client.text, /\(--broker \//);
    const worker = await run(dir, [
      "run",
      "-A",
      "jsr:@celeriac/celeriac/worker",
      "--app",
      "./tasks.ts",
    ]);
    assert.notEqual(worker.code, 0);
    assert.match(worker.text, /Deno KV is not enabled.*--unstable-kv/s);
    assert.match(
      worker.text,
      /set by the default, as no broker was given .*the command line's --broker\)/,
    );
    assert.doesNotMatch(worker.text, /Deno\.openKv is not a function/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "consumer project: README commands with --unstable-kv run a task on the KV default",
}, async () => {
  const dir = await consumerProject();
  const worker = Proc.start("worker", Deno.execPath(), [
    "run",
    "-A",
    "--unstable-kv",
    "jsr:@celeriac/celeriac/worker",
    "--app",
    "./tasks.ts",
    "-c",
    "1",
  ], { cwd: dir, env: { NO_COLOR: "1" } });
  try {
    await worker.waitFor(/ready/, 60_000);
    const client = await run(dir, ["run", "-A", "--unstable-kv", "client.ts"]);
    assert.match(client.text, /sum 5/, client.text);
  } finally {
    await worker.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "consumer project: a worker on Redis needs no unstable flag; sandboxes need one",
  ignore: WITHOUT_REDIS,
}, async () => {
  const dir = await consumerProject();
  const prefix = uniquePrefix("consumer");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const env = { NO_COLOR: "1", CELERY_BROKER_URL: url, CELERY_RESULT_BACKEND: url };
  const worker = Proc.start("worker", Deno.execPath(), [
    "run",
    "-A",
    "jsr:@celeriac/celeriac/worker",
    "--app",
    "./tasks.ts",
    "-c",
    "1",
  ], { cwd: dir, env });
  try {
    await worker.waitFor(/ready/, 60_000);
    const client = await run(dir, ["run", "-A", "client.ts"], env);
    assert.match(client.text, /sum 5/, client.text);
    const sandboxed = await run(dir, [
      "run",
      "-A",
      "jsr:@celeriac/celeriac/worker",
      "--app",
      "./tasks.ts",
      "-c",
      "1",
      "--task-permissions",
      "none",
    ], env);
    assert.notEqual(sandboxed.code, 0);
    // Deno itself stops the process (uncatchable) and names the flag; the README says so.
    assert.match(sandboxed.text, /The `--unstable-worker-options` flag must be provided/);
  } finally {
    await worker.stop();
    await Deno.remove(dir, { recursive: true });
    await deleteKeys(prefix);
  }
});
