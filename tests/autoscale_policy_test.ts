/**
 * Autoscale decisions (`src/worker/autoscale_policy.ts`) with a fake clock,
 * `--autoscale` parsing as Celery's, and the `autoscale` / `pool_grow` /
 * `pool_shrink` replies of a worker with and without an autoscaler.
 */

import assert from "node:assert/strict";
import {
  AUTOSCALE_KEEPALIVE,
  AutoscalePolicy,
  parseAutoscale,
  rangeProblem,
} from "../src/worker/autoscale_policy.ts";
import { runInspect, type WorkerInspection } from "../src/worker/inspect_commands.ts";
import { scaleWorkerOptions } from "../src/cli/scale_flags.ts";
import { runEnvCase } from "./helpers/env_cases.ts";

Deno.test("autoscale: grows to the tasks held, never past max", () => {
  const p = new AutoscalePolicy({ max: 5, min: 1 });
  assert.equal(p.decide({ qty: 3, processes: 1, idle: 0 }, 0), 2);
  assert.equal(p.decide({ qty: 50, processes: 3, idle: 0 }, 10), 2, "up to max");
  assert.equal(p.decide({ qty: 50, processes: 5, idle: 0 }, 20), 0, "at max");
  assert.equal(p.decide({ qty: 1, processes: 1, idle: 0 }, 30), 0, "one task, one Web Worker");
});

Deno.test("autoscale: shrinks to the minimum after the keep-alive of surplus", () => {
  const p = new AutoscalePolicy({ max: 4, min: 2, keepalive: 30 });
  assert.equal(p.decide({ qty: 10, processes: 2, idle: 0 }, 0), 2);
  // The burst runs on for a minute: no surplus, no shrink.
  assert.equal(p.decide({ qty: 6, processes: 4, idle: 0 }, 60_000), 0);
  // It ends: the keep-alive counts from now, not from the scale-up (Celery's rule).
  assert.equal(p.decide({ qty: 0, processes: 4, idle: 4 }, 61_000), 0);
  assert.equal(p.decide({ qty: 0, processes: 4, idle: 4 }, 90_000), 0, "29 s of surplus");
  assert.equal(p.decide({ qty: 0, processes: 4, idle: 4 }, 91_000), -2, "down to min, not below");
  assert.equal(p.decide({ qty: 0, processes: 2, idle: 2 }, 200_000), 0, "at min");
});

Deno.test("autoscale: demand in the keep-alive resets it", () => {
  const p = new AutoscalePolicy({ max: 4, min: 1, keepalive: 10 });
  assert.equal(p.decide({ qty: 0, processes: 4, idle: 4 }, 0), 0);
  assert.equal(p.decide({ qty: 4, processes: 4, idle: 0 }, 5_000), 0, "all needed again");
  assert.equal(p.decide({ qty: 1, processes: 4, idle: 3 }, 6_000), 0, "surplus starts anew");
  assert.equal(p.decide({ qty: 1, processes: 4, idle: 3 }, 15_999), 0);
  assert.equal(p.decide({ qty: 1, processes: 4, idle: 3 }, 16_000), -3, "keeps 1 for the task");
});

Deno.test("autoscale: retires only idle Web Workers, the rest once they are idle", () => {
  const p = new AutoscalePolicy({ max: 6, min: 0, keepalive: 1 });
  // 2 tasks on 6 Web Workers, but both tasks sit on different ones and 2 more still finish work.
  assert.equal(p.decide({ qty: 2, processes: 6, idle: 2 }, 0), 0);
  assert.equal(p.decide({ qty: 2, processes: 6, idle: 2 }, 1_000), -2, "only the idle ones");
  assert.equal(p.decide({ qty: 2, processes: 4, idle: 1 }, 1_100), -1, "no new keep-alive");
  assert.equal(p.decide({ qty: 2, processes: 3, idle: 0 }, 1_200), 0, "none idle: none retired");
  assert.equal(p.decide({ qty: 0, processes: 3, idle: 3 }, 1_300), -2, "a pool keeps 1");
});

Deno.test("autoscale: update moves the pool into the new range at once", () => {
  const p = new AutoscalePolicy({ max: 10, min: 2 });
  assert.equal(p.update(4, null, 7), -3, "above the new max: shrink now");
  assert.deepEqual([p.max, p.min], [4, 2]);
  assert.equal(p.update(null, 3, 2), 1, "below the new min: grow now");
  assert.equal(p.update(8, 1, 3), 0, "inside the range: nothing");
  assert.deepEqual([p.max, p.min], [8, 1]);
  assert.throws(() => p.update(2, 5, 3), /max >= min >= 0.*max=2 min=5/);
  assert.deepEqual([p.max, p.min], [8, 1], "a refused update changes nothing");
  assert.equal(p.update(5, 0, 1), 0, "min 0 keeps the one Web Worker");
});

Deno.test("autoscale: settings are checked", () => {
  assert.equal(AUTOSCALE_KEEPALIVE, 30);
  assert.equal(new AutoscalePolicy({ max: 2 }).keepalive, 30, "Celery's default");
  assert.equal(new AutoscalePolicy({ max: 2, keepalive: 0.5 }).keepalive, 0.5);
  assert.throws(() => new AutoscalePolicy({ max: 0 }), RangeError);
  assert.throws(() => new AutoscalePolicy({ max: 2, min: 3 }), /max=2 min=3/);
  assert.throws(
    () => new AutoscalePolicy({ max: 2, keepalive: 0 }),
    /keep-alive needs seconds > 0/,
  );
  assert.equal(rangeProblem(3, 3), null);
  assert.match(rangeProblem(2.5, 1)!, /whole numbers/);
});

Deno.test("autoscale: --autoscale parses as Celery's (either order, MAX alone means MIN 0)", () => {
  assert.deepEqual(parseAutoscale("10,3"), { max: 10, min: 3 });
  assert.deepEqual(parseAutoscale("3,10"), { max: 10, min: 3 });
  assert.deepEqual(parseAutoscale(" 4 , 4 "), { max: 4, min: 4 });
  assert.deepEqual(parseAutoscale("8"), { max: 8, min: 0 });
  for (const bad of ["", "a,1", "1,2,3", "0", "2,-1", "1.5", "3,"]) {
    assert.throws(() => parseAutoscale(bad), TypeError, `"${bad}" is refused`);
  }
  assert.deepEqual(scaleWorkerOptions({ autoscale: "3,1", "autoscale-keepalive": "0.5" }), {
    autoscale: { max: 3, min: 1, keepalive: 0.5 },
  });
  assert.throws(
    () => scaleWorkerOptions({ autoscale: "3", "autoscale-keepalive": "0" }),
    /--autoscale-keepalive needs a number of seconds > 0/,
  );
  assert.throws(
    () => scaleWorkerOptions({ "autoscale-keepalive": "5" }),
    /goes with --autoscale/,
  );
});

Deno.test("autoscale: AUTOSCALE_KEEPALIVE in the environment sets the keep-alive, as Celery's", async () => {
  // Set in a process of its own: files running in parallel share this one's environment.
  await runEnvCase("autoscale keepalive");
});

/** An inspection whose pool commands are what is tested; the rest is not reached. */
function inspection(scaler: AutoscalePolicy | null, resized: number[]): WorkerInspection {
  const unused = () => {
    throw new Error("not used by this test");
  };
  return {
    active: unused,
    reserved: unused,
    scheduled: unused,
    queryTask: unused,
    stats: unused,
    activeQueues: unused,
    conf: unused,
    report: unused,
    clock: unused,
    revokedTimes: unused,
    mergeRevoked: unused,
    setTimeLimit: unused,
    addConsumer: unused,
    cancelConsumer: unused,
    resizePool: (n) => void resized.push(n),
    autoscale: (max, min) => {
      if (!scaler) return null;
      scaler.update(max, min, 1);
      return [scaler.max, scaler.min];
    },
    autoscaling: () => scaler !== null,
  };
}

function request(method: string, args: Record<string, unknown>) {
  return { method, arguments: args, destination: null };
}

Deno.test("autoscale: control replies are Celery 5.2's", async () => {
  const resized: number[] = [];
  const on = inspection(new AutoscalePolicy({ max: 3, min: 1 }), resized);
  const node = "celeriac@h";
  assert.deepEqual(
    await runInspect(request("autoscale", { max: 10, min: 3 }), on, node),
    { ok: "autoscale now max=10 min=3" },
  );
  assert.deepEqual(
    await runInspect(request("autoscale", { max: 6 }), on, node),
    { ok: "autoscale now max=6 min=3" },
    "an absent bound is kept",
  );
  assert.deepEqual(
    await runInspect(request("autoscale", { max: 2, min: 4 }), on, node),
    { error: "autoscale needs max >= 1 and max >= min >= 0 (whole numbers), got max=2 min=4" },
  );
  // 0 0 keeps max >= min >= 0, yet a pool needs one Web Worker: the words say max >= 1.
  assert.deepEqual(
    await runInspect(request("autoscale", { max: 0, min: 0 }), on, node),
    { error: "autoscale needs max >= 1 and max >= min >= 0 (whole numbers), got max=0 min=0" },
  );
  assert.deepEqual(await runInspect(request("pool_grow", { n: 1 }), on, node), {
    error: "pool_grow is not supported with autoscale. Adjust autoscale range instead.",
  });
  assert.deepEqual(await runInspect(request("pool_shrink", { n: 1 }), on, node), {
    error: "pool_shrink is not supported with autoscale. Adjust autoscale range instead.",
  });
  assert.deepEqual(resized, [], "an autoscaling pool is not resized by hand");

  const off = inspection(null, resized);
  assert.deepEqual(await runInspect(request("autoscale", { max: 3, min: 1 }), off, node), {
    error: "ValueError('Autoscale not enabled')",
  });
  assert.deepEqual(await runInspect(request("pool_grow", { n: 2 }), off, node), {
    ok: "pool will grow",
  });
  assert.deepEqual(resized, [2]);
});

Deno.test({
  name: "autoscale: without env permission the keep-alive is the default (no prompt)",
  permissions: { env: false },
  fn: () => {
    assert.deepEqual(scaleWorkerOptions({ autoscale: "4,2" }).autoscale, { max: 4, min: 2 });
  },
});
