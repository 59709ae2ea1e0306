/**
 * routeSignature: a signature option set to null is kept, not filled from
 * the task's default; the route then fills it, as Celery's router merges a
 * route under the options (lpmerge keeps the route's value where an
 * option is None). Pure.
 */

import assert from "node:assert/strict";
import { compileRoutes, routeSignature } from "../src/client/routes.ts";

Deno.test("routing: an option set to null takes the route's value, not the task's default", () => {
  const routes = compileRoutes({ "t.*": { queue: "routed", priority: 9 } });
  const task = { queue: "own", priority: 3, timeLimit: 30 };
  const out = routeSignature(routes, task, "t.x", [], {}, { queue: null, priority: null });
  assert.deepEqual(out, { queue: "routed", priority: 9, time_limit: 30 });
  const unrouted = routeSignature(null, task, "t.x", [], {}, { priority: null });
  assert.deepEqual(unrouted, { priority: null, queue: "own", time_limit: 30 });
});
