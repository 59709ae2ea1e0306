/**
 * `status`, `inspect`, `control`, `report` and `events` with a
 * `kv://:memory:` broker (from --broker or CELERY_BROKER_URL): no other
 * process can reach it, so "No nodes replied" says why, and `events` warns
 * that no event will come; a broker others share adds nothing.
 */

import assert from "node:assert/strict";
import { runCli } from "./helpers/procs.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PRIVATE = /kv:\/\/:memory: is private to this process: no worker in another process can/;

/** The CLI with CELERY_BROKER_URL and CELERY_RESULT_BACKEND blank, unless `env` sets them. */
const cli = (args: string[], env: Record<string, string> = {}) =>
  runCli(args, { env: { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "", ...env } });

Deno.test("cli private broker: No nodes replied says kv://:memory: reaches no other process", async () => {
  const flag = ["--broker", "kv://:memory:", "-t", "0.2"];
  for (
    const args of [
      ["status", ...flag],
      ["inspect", "ping", ...flag],
      ["control", "heartbeat", ...flag],
      ["report", ...flag],
    ]
  ) {
    const ran = await cli(args);
    assert.equal(ran.code, 69, `${args[0]}: ${ran.stderr}`);
    const lines = ran.stderr.trim().split("\n");
    assert.equal(lines[0], "Error: No nodes replied within time constraint.", ran.stderr);
    assert.match(lines[1] ?? "", PRIVATE, `${args[0]}: ${ran.stderr}`);
    assert.match(lines[1], /kv:\/\/\.\/file\.db/);
  }
  const fromEnv = await cli(["status", "-t", "0.2"], { CELERY_BROKER_URL: "kv://:memory:" });
  assert.equal(fromEnv.code, 69);
  assert.match(fromEnv.stderr, PRIVATE, "CELERY_BROKER_URL too");
});

Deno.test("cli private broker: a shared KV file adds nothing to No nodes replied", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-private-broker-" });
  try {
    const ran = await cli(["status", "--broker", `kv://${dir}/shared.db`, "-t", "0.2"]);
    assert.equal(ran.code, 69);
    assert.equal(ran.stderr, "Error: No nodes replied within time constraint.\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli private broker: events --dump warns that no event can come", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "worker.ts", "events", "--dump", "--broker", "kv://:memory:"],
    cwd: ROOT,
    env: { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "" },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const stdout = child.stdout.getReader();
  const first = await stdout.read(); // "-> evdump: starting capture...": the warning came before
  assert.match(new TextDecoder().decode(first.value), /starting capture/);
  child.kill("SIGTERM");
  await stdout.cancel();
  const stderr = new TextDecoder().decode(
    (await new Response(child.stderr).arrayBuffer()) as ArrayBuffer,
  );
  await child.status;
  assert.match(stderr, PRIVATE, stderr);
});
