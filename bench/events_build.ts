// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/events_build.ts [--tasks 20000] [--rounds 12] [--base DIR]`:
 * the main thread's cost per task of a `-E` worker's task events, without
 * a worker or a broker. For each no-op task it writes the three events a
 * worker sends (`task-received`, `task-started`, `task-succeeded`, with
 * distinct strings per task as decoded messages give them) into an
 * `EventListWriter`, and every 500 events (the dispatcher's `batchMax`)
 * takes them as a `task.multi` message, frames its kombu envelope
 * (base64 body) and writes it as a Redis PUBLISH into a `RespWriter`,
 * whose buffer is recycled as a connection does; no socket. It prints the
 * median µs per task of the writing alone (`build`) and of the whole
 * (`+publish`), over `--rounds` rounds after two warm-up ones.
 *
 * A drain's throughput and CPU per task move by more than this cost from
 * run to run on a shared 2-CPU host; this figure moves by a few percent.
 * With `--base DIR` (another checkout, e.g. a worktree of main) the same
 * rounds run alternately from both, and the median of the per-round ratios
 * (this / base) is printed too.
 *
 * @module
 */

import { importSides, roundArgs, taskShapes } from "./event_sides.ts";

const { tasks, rounds, base } = roundArgs();
const BATCH_MAX = 500;
const HOSTNAME = "celeriac@bench-host.example";

/** One checkout this measures: its modules. */
interface Side {
  name: string;
  // deno-lint-ignore no-explicit-any
  m: Record<string, any>;
}

/** Distinct strings per task, as each decoded message has its own. */
const fresh = (s: string) => JSON.parse(JSON.stringify(s)) as string;
const ids = Array.from({ length: tasks }, () => crypto.randomUUID());
const names = ids.map(() => fresh("bench.noop"));
const args = ids.map(() => fresh("()"));
const kwargs = ids.map(() => fresh("{}"));
const results = ids.map(() => fresh("1"));
const channel = new TextEncoder().encode("/0.celeryev/task.multi");
const info = Object.freeze({ exchange: "celeryev", routing_key: "task.multi" });

/** One round: µs per task, writing alone or with the publish framing. */
function round(side: Side, publish: boolean): number {
  const { m } = side;
  const { received, started, succeeded } = taskShapes(m);
  const writer = new m.EventListWriter({ hostname: HOSTNAME, pid: 4242 });
  const resp = new m.RespWriter();
  let clock = 0;
  const t0 = performance.now();
  for (let i = 0; i < tasks; i++) {
    const id = ids[i];
    writer.addValues(
      received,
      [id, names[i], args[i], kwargs[i], id, null, 0, null, null],
      ++clock,
    );
    writer.addValues(started, [id], ++clock);
    writer.addValues(succeeded, [id, results[i], 0.000123 * (1 + i % 7)], ++clock);
    while (writer.length >= BATCH_MAX || (i === tasks - 1 && writer.length > 0)) {
      const body = writer.take(BATCH_MAX);
      if (!publish) continue;
      const message = m.encodeEventListMessage(body, HOSTNAME);
      resp.publish(channel, m.encodeEnvelopePieces(message, info, crypto.randomUUID()));
      resp.recycle(resp.take());
    }
  }
  return (performance.now() - t0) * 1000 / tasks;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const sides: Side[] = await importSides([
  "src/protocol/event_writer.ts",
  "src/protocol/events.ts",
  "src/protocol/envelope.ts",
  "src/broker/resp_writer.ts",
], base);
const figures = sides.map(() => ({ build: [] as number[], publish: [] as number[] }));
for (let r = -2; r < rounds; r++) {
  for (const [k, side] of sides.entries()) {
    const build = round(side, false);
    const publish = round(side, true);
    if (r < 0) continue;
    figures[k].build.push(build);
    figures[k].publish.push(publish);
  }
}
console.log(`${tasks} no-op tasks' events, ${rounds} rounds (median µs per task):`);
for (const [k, side] of sides.entries()) {
  const f = figures[k];
  console.log(
    `  ${side.name}: build ${median(f.build).toFixed(2)}, +publish ${median(f.publish).toFixed(2)}`,
  );
}
if (sides.length === 2) {
  const ratio = (key: "build" | "publish") =>
    median(figures[0][key].map((v, i) => v / figures[1][key][i])).toFixed(3);
  console.log(
    `  this / base, median of the rounds' ratios: build ${ratio("build")}, +publish ${
      ratio("publish")
    }`,
  );
}
