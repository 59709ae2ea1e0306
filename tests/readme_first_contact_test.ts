/**
 * What a new user reads first holds: commands name files that exist, tasks
 * the snippets call are defined somewhere, the warnings about shared servers
 * match what the tests and benchmarks do, and example header commands run.
 */

import assert from "node:assert/strict";
import { Proc } from "./helpers/procs.ts";

const ROOT = new URL("../", import.meta.url);
const readme = await Deno.readTextFile(new URL("README.md", ROOT));
const firstScreen = readme.slice(0, readme.indexOf("## Contents"));
/** The first screen as one line of words (blockquote markers and line breaks removed). */
const firstScreenWords = firstScreen.replace(/\n>\s?/g, " ").replace(/\s+/g, " ");

function exists(path: string): boolean {
  try {
    Deno.statSync(new URL(path, ROOT));
    return true;
  } catch {
    return false;
  }
}

Deno.test("readme: the first screen's commands name files that exist in a checkout", () => {
  const apps = [...firstScreen.matchAll(/--app (\S+?)`?\s/g)].map((m) => m[1]);
  assert.ok(apps.length > 0, "the first screen shows a worker command");
  for (const app of apps) assert.ok(exists(app), `${app} does not exist`);
});

Deno.test("readme: every task the TypeScript snippets call by name is defined somewhere", async () => {
  const snippets = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]).join("\n");
  const called = [
    ...snippets.matchAll(/(?:sendTask|remoteTask(?:<[^>]*>)?)\(\s*"([^"]+)"/g),
  ].map((m) => m[1]);
  const sources = snippets +
    await Deno.readTextFile(new URL("examples/tasks.ts", ROOT)) +
    await Deno.readTextFile(new URL("examples/python/tasks.py", ROOT));
  for (const name of called) {
    assert.ok(
      sources.includes(`app.task("${name}"`) || sources.includes(`@app.task(name="${name}")`),
      `${name} is called in the README but no example defines it`,
    );
  }
});

Deno.test("readme: the shared-server warnings match what tests and benchmarks do", async () => {
  const bench = await Deno.readTextFile(new URL("bench/redis_workload.ts", ROOT));
  const dbs = [...bench.matchAll(/export const (?:BROKER|BACKEND)_DB = (\d+);/g)].map((m) => m[1]);
  assert.equal(dbs.length, 2);
  assert.match(firstScreenWords, new RegExp(`flushes Redis databases ${dbs[0]} and ${dbs[1]}`));
  const reconnect = await Deno.readTextFile(new URL("tests/amqp_reconnect_test.ts", ROOT));
  assert.doesNotMatch(reconnect, /stop_app|start_app/);
  assert.match(firstScreenWords, /tests never stop or restart the shared Redis and RabbitMQ/);
  assert.match(readme.replace(/\s+/g, " "), /remote control on Redis, RabbitMQ and KV/);
  const mod = await Deno.readTextFile(new URL("mod.ts", ROOT));
  assert.match(mod.slice(0, mod.indexOf("@module")), /RabbitMQ/);
});

Deno.test("readme: the command in examples/sandbox_tasks.ts's header starts a worker", async () => {
  const header = await Deno.readTextFile(new URL("examples/sandbox_tasks.ts", ROOT));
  const cmd = /`deno run ([^`]+)`/.exec(header)?.[1];
  assert.ok(cmd, "the header shows a command");
  const worker = Proc.start("sandbox worker", Deno.execPath(), ["run", ...cmd.split(/\s+/)], {
    env: { NO_COLOR: "1", CELERY_DEFAULT_QUEUE: `sandbox-header-${crypto.randomUUID()}` },
  });
  try {
    await worker.waitFor(/ ready: /, 60_000);
  } finally {
    await worker.stop();
  }
});
