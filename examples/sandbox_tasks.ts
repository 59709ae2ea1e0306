/**
 * Tasks that run in permission sandboxes, served by examples/sandbox.ts (or
 * `deno run --allow-read=. --allow-write=.celeriac --allow-env worker.ts --app ./examples/sandbox_tasks.ts`
 * from the repository root, with `DENO_NO_PROMPT=1` in its environment in a terminal; outside it
 * add `--unstable-kv --unstable-worker-options`).
 *
 * Each task gets only the Deno permissions it declares; tasks with the same
 * permissions share a group of Web Workers. What a task was not granted
 * fails with `PermissionDenied`, and the worker carries on.
 */

import { Celery } from "../mod.ts";

export const app = new Celery();

/** The only directory the file tasks may read. */
const DATA = new URL("./data/", import.meta.url).pathname;

/** Counts the words of a file in examples/data: may read that directory, nothing else. */
export const wordCount = app.task(
  "sandbox.word_count",
  { permissions: { read: [DATA] } },
  async (name: string) => {
    const text = await Deno.readTextFile(new URL(name, `file://${DATA}`));
    return text.split(/\s+/).filter(Boolean).length;
  },
);

/** Same sandbox, any path: reading outside examples/data is denied. */
export const peek = app.task(
  "sandbox.peek",
  { permissions: { read: [DATA] } },
  async (path: string) => (await Deno.readTextFile(path)).slice(0, 40),
);

/** No permissions at all: pure computation is fine. */
export const fib = app.task("sandbox.fib", { permissions: "none" }, (n: number) => {
  let [a, b] = [0, 1];
  for (let i = 0; i < n; i++) [a, b] = [b, a + b];
  return a;
});

/** No permissions at all: reading an environment variable is denied. */
export const home = app.task(
  "sandbox.home",
  { permissions: "none" },
  () => Deno.env.get("HOME") ?? null,
);
