// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/time_limit_pool.ts`: what time limits cost the threads
 * pool alone, no broker. A pool of the worker's default shape (2 Web Workers,
 * 64 slots each) runs N `bench.noop` tasks, kept full as a worker keeps it
 * (each batch of outcomes is answered with as many new tasks, one `run()`),
 * once with no limit and once with a hard and a soft limit on every task, in
 * turns (`--rounds` pairs, the order alternated); prints the rate of each
 * and the process's CPU time per task.
 *
 * Options: `--tasks N` (20000), `--rounds R` (3), `--time-limit S` (60),
 * `--soft-time-limit S` (50).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { encodeTaskMessage } from "../src/protocol/task_message.ts";
import type { RunOutcome, RunRequest } from "../src/worker/executor.ts";
import { ThreadPool } from "../src/worker/thread_pool.ts";
import type { TimeLimits } from "../src/worker/time_limits.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    tasks: { type: "string", default: "20000" },
    rounds: { type: "string", default: "3" },
    "time-limit": { type: "string", default: "60" },
    "soft-time-limit": { type: "string", default: "50" },
  },
});
const N = Number(values.tasks);
const ROUNDS = Number(values.rounds);
const LIMITS: TimeLimits = {
  hard: Number(values["time-limit"]),
  soft: Number(values["soft-time-limit"]),
};
const SLOTS = 64;
const SIZE = 2;
const MODULE = new URL("./tasks.ts", import.meta.url).href;

/** CPU time of this process so far (user + system), in ms, from /proc. */
function cpuMs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function requests(limits: TimeLimits | undefined): RunRequest[] {
  const m = encodeTaskMessage({
    task: "bench.noop",
    id: "x",
    args: [],
    kwargs: {},
    now: new Date(),
    origin: "bench@local",
    replyTo: "r",
  });
  return Array.from({ length: N }, (_, i) => ({
    seq: i + 1,
    task: "bench.noop",
    id: `t-${i}`,
    body: m.body,
    contentType: m.contentType,
    contentEncoding: m.contentEncoding,
    headers: m.headers,
    storeResult: true,
    timeLimits: limits,
    info: {
      retries: 0,
      rootId: null,
      parentId: null,
      group: null,
      eta: null,
      expires: null,
      queue: "bench",
      redelivered: false,
      hostname: "bench@local",
    },
  }));
}

/** One drain of N tasks through a fresh pool; tasks per second and CPU µs per task. */
async function drain(limits: TimeLimits | undefined): Promise<{ rate: number; cpu: number }> {
  const reqs = requests(limits);
  let next = 0;
  let done = 0;
  const { promise, resolve } = Promise.withResolvers<void>();
  const pool: ThreadPool = new ThreadPool(
    { size: SIZE, slots: SLOTS, module: MODULE, exportName: "app", config: {} },
    {
      onOutcomes: (o: RunOutcome[]) => {
        done += o.length;
        if (done === N) resolve();
        const more = reqs.slice(next, next + o.length);
        next += more.length;
        if (more.length) pool.run(more);
      },
      onPublish: () => Promise.resolve(),
      onLost: (seqs, reason) => {
        throw new Error(`lost ${seqs.length}: ${reason}`);
      },
      onTimeLimit: (seq) => {
        throw new Error(`task ${seq} hit its time limit`);
      },
    },
  );
  await pool.start();
  const cpu0 = cpuMs();
  const t0 = performance.now();
  next = Math.min(N, SIZE * SLOTS);
  pool.run(reqs.slice(0, next));
  await promise;
  const wall = performance.now() - t0;
  const cpu = cpuMs() - cpu0;
  await pool.close();
  return { rate: N / (wall / 1000), cpu: (cpu * 1000) / N };
}

const rows: Record<string, { rate: number; cpu: number }[]> = { none: [], limits: [] };
await drain(undefined); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 ? ["limits", "none"] : ["none", "limits"];
  for (const kind of order) {
    const res = await drain(kind === "limits" ? LIMITS : undefined);
    rows[kind].push(res);
    console.log(
      `${kind.padEnd(6)} ${Math.round(res.rate)} tasks/s, ${res.cpu.toFixed(1)} µs CPU/task`,
    );
  }
}
const median = (xs: number[]) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)];
const none = median(rows.none.map((x) => x.rate));
const lim = median(rows.limits.map((x) => x.rate));
console.log(
  `median: none ${Math.round(none)}/s, limits ${Math.round(lim)}/s (${
    (lim / none).toFixed(2)
  }× the no-limit rate)`,
);
