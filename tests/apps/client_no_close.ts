// deno-lint-ignore-file no-console
/**
 * A client script that never calls `app.close()` (as a Celery user's first
 * script): it sends `t.add` or `t.slow` and prints the result, then ends.
 * Arguments: broker, backend, queue, and `slow` to wait on a task that runs
 * a while (the script is idle but for its `get()`).
 */

import { Celery } from "../../mod.ts";

const [broker, backend, queue, mode] = Deno.args;
const app = new Celery({ broker, backend, defaultQueue: queue });
const r = mode === "slow"
  ? await app.sendTask("t.slow", [1500])
  : await app.sendTask("t.add", [2, 3]);
console.log("result", await r.get());
