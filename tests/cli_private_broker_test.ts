/**
 * `status`, `inspect`, `control`, `report` and `events` with a
 * `kv://:memory:` broker (from --broker or CELERY_BROKER_URL): no other
 * process can reach it, so "No nodes replied" says why (and, on the default
 * broker, that none was set), and `events` warns
 * that no event will come, and `call` and `schedule add` that no worker or
 * beat elsewhere sees what they sent or stored; a broker others share adds
 * nothing.
 */

import assert from "node:assert/strict";
import { runCli, scheduleAddArgs } from "./helpers/procs.ts";
import { noReplyWords } from "../src/cli/inspect.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const PRIVATE = /kv:\/\/:memory: is private to this process: no worker in another process can/;

const UNNAMED = ": neither --app, -b nor CELERY_BROKER_URL named one. Name your workers' broker: " +
  "--app ./tasks.ts (the app they run) or -b redis://…";

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

Deno.test("cli private broker: No nodes replied names the broker asked, its password masked", () => {
  const flags = { broker: "redis://:s3cret@10.0.0.5:6379/0" };
  assert.equal(noReplyWords(flags.broker, flags), "Asked on redis://:***@10.0.0.5:6379/0.");
  assert.equal(
    noReplyWords("amqp://guest:guest@127.0.0.1:5672//", {}),
    "Asked on amqp://guest:***@127.0.0.1:5672//.",
  );
});

Deno.test("cli private broker: No nodes replied from a shared KV file names the broker asked", async () => {
  // `status -b URL` said only "No nodes replied": a typo in the URL looked like workers down.
  const dir = await Deno.makeTempDir({ prefix: "celeriac-private-broker-" });
  try {
    const ran = await cli(["status", "--broker", `kv://${dir}/shared.db`, "-t", "0.2"]);
    assert.equal(ran.code, 69);
    assert.equal(
      ran.stderr,
      `Error: No nodes replied within time constraint.\nAsked on kv://${dir}/shared.db.\n`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli private broker: No nodes replied from the default broker says none was set", async () => {
  // `inspect ping` without --app asked the KV file under the current directory and said only
  // "No nodes replied", as if the workers on Redis were down.
  const dir = await Deno.makeTempDir({ prefix: "celeriac-default-broker-" });
  try {
    const o = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-kv", `${ROOT}worker.ts`, "inspect", "ping", "-t", "0.2"],
      cwd: dir,
      env: { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "" },
      stdout: "null",
      stderr: "piped",
      stdin: "null",
    }).output();
    const lines = new TextDecoder().decode(o.stderr).trim().split("\n");
    assert.equal(o.code, 69);
    assert.equal(lines[0], "Error: No nodes replied within time constraint.");
    assert.equal(
      lines[1],
      `Asked on the default broker, kv://.celeriac/celeriac.sqlite under ${dir}${UNNAMED}`,
    );
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

/** `schedule add` of an entry, with an app (schedule needs one). */
const SCHEDULE = scheduleAddArgs("periodic.hello", [
  "--app",
  "./examples/periodic.ts",
  "--args",
  '["world"]',
]);

Deno.test("cli private broker: call and schedule add on kv://:memory: warn that no other process sees it", async () => {
  // Both said nothing: the task or entry went into a database gone when the command exits.
  const mem = ["--broker", "kv://:memory:"];
  const call = await cli(["call", "t.add", ...mem]);
  assert.equal(call.code, 0, call.stderr);
  const id = call.stdout.trim();
  assert.equal(
    call.stderr.split("\n")[0],
    `warning: no worker in another process can take ${id}: kv://:memory: is private to this ` +
      "process: no worker in another process can see it (each has its own). Use a broker they " +
      "share: kv://./file.db (the same file, --unstable-kv), redis://… or amqp://… (--broker or " +
      "CELERY_BROKER_URL)",
  );
  const waited = await cli([
    "call",
    "t.add",
    ...mem,
    "--backend",
    "kv://:memory:",
    "--wait",
    "-t",
    "0.2",
  ]);
  assert.match(
    waited.stderr,
    /^warning: no worker in another process can take .*kv:\/\/:memory: is private/,
  );
  const add = await cli([...SCHEDULE, ...mem]);
  assert.equal(add.code, 0, add.stderr);
  assert.match(
    add.stderr,
    /^warning: no beat in another process can read this entry: kv:\/\/:memory: is private/,
  );
  const dir = await Deno.makeTempDir({ prefix: "celeriac-private-broker-" });
  try {
    const shared = ["--broker", `kv://${dir}/shared.db`];
    const ran = await cli(["call", "t.add", ...shared]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stderr, "");
    const stored = await cli([...SCHEDULE, ...shared]);
    assert.equal(stored.code, 0, stored.stderr);
    assert.equal(stored.stderr, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** worker.ts's CLI run in `dir` with no broker named (CELERY_BROKER_URL blank). */
function inDir(dir: string, args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", `${ROOT}worker.ts`, ...args],
    cwd: dir,
    env: { CELERY_BROKER_URL: "", CELERY_RESULT_BACKEND: "" },
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  });
}

Deno.test("cli private broker: call and events on the default broker say none was set", async () => {
  // Both said nothing: `call` without --app put the task into ./.celeriac, where the user's
  // worker on Redis never looks, and exited 0; `events --dump` waited there in silence.
  const dir = await Deno.makeTempDir({ prefix: "celeriac-default-broker-" });
  try {
    const o = await inDir(dir, ["call", "tasks.add", "--args", "[2, 3]"]).output();
    const [stdout, stderr] = [o.stdout, o.stderr].map((b) => new TextDecoder().decode(b));
    assert.equal(o.code, 0, stderr);
    const id = stdout.trim();
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(
      stderr,
      `warning: sent ${id} to the default broker, kv://.celeriac/celeriac.sqlite under ${dir}` +
        `${UNNAMED}\n`,
    );
    const child = inDir(dir, ["events", "--dump"]).spawn();
    const reader = child.stdout.getReader();
    const first = await reader.read(); // "-> evdump: starting capture...": the hint came before
    assert.match(new TextDecoder().decode(first.value), /starting capture/);
    child.kill("SIGTERM");
    await reader.cancel();
    const events = new TextDecoder().decode(
      (await new Response(child.stderr).arrayBuffer()) as ArrayBuffer,
    );
    await child.status;
    assert.equal(
      events.split("\n")[0],
      `events: listening on the default broker, kv://.celeriac/celeriac.sqlite under ${dir}` +
        UNNAMED,
      events,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli private broker: an --app on the default broker, or -b naming it, gets no default-broker warning", async () => {
  // `call --app ./examples/tasks.ts` told the user who passed --app to pass --app: the app's
  // workers, given the same --app, use the same default broker.
  const dir = await Deno.makeTempDir({ prefix: "celeriac-default-broker-" });
  try {
    await Deno.writeTextFile(
      `${dir}/tasks.ts`,
      `import { Celery } from "${ROOT}mod.ts";\nexport const app = new Celery();\n` +
        `app.task("tasks.add", (a: number, b: number) => a + b);\n`,
    );
    const named = [["--app", "./tasks.ts"], ["-b", "kv://.celeriac/celeriac.sqlite"]];
    for (const flags of named) {
      const call = await inDir(dir, ["call", "tasks.add", "--args", "[2, 3]", ...flags]).output();
      const callErr = new TextDecoder().decode(call.stderr);
      assert.equal(call.code, 0, callErr);
      assert.equal(callErr, "", `call ${flags.join(" ")}`);
      const ping = await inDir(dir, ["inspect", "ping", "-t", "0.2", ...flags]).output();
      assert.equal(ping.code, 69);
      assert.equal(
        new TextDecoder().decode(ping.stderr),
        "Error: No nodes replied within time constraint.\n" +
          "Asked on kv://.celeriac/celeriac.sqlite.\n",
        `inspect ping ${flags.join(" ")}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
