// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/ingest_stages.ts [--tasks 20000] [--rounds 12] [--base DIR]`: the
 * dashboard's ingest of a `-E` worker's task events in one process, by stage, without a
 * broker: the `task.multi` envelopes a worker publishes on Redis (its `EventListWriter`,
 * 100 events a message, a heartbeat every 100 tasks), as the bytes a subscriber reads, go
 * through `envelope` (the bytes as text and `decodeEnvelope`, as the Redis fanout's
 * subscriber does), `events` (`decodeEventMessage`) and `model` (`ViewModel.apply` of each
 * event, its task table full: 10,000 tasks). It prints the median µs per event of each
 * stage and of the whole over `--rounds` rounds after two warm-up ones, and the heap's
 * growth. The garbage collector's time falls in whichever stage it interrupts.
 *
 * With `--base DIR` (another checkout, e.g. a worktree of main) the same rounds run
 * alternately from both, each with a view model of its own, and the median of the
 * per-round ratios (this / base) is printed too. Run with `--cpu-prof` for a V8 profile.
 *
 * @module
 */

import { importSides, roundArgs, taskShapes } from "./event_sides.ts";

const { tasks, rounds, base } = roundArgs();
const BATCH = 100;
const HOSTNAME = "celeriac@bench-ingest.example";
const STAGES = ["envelope", "events", "model"] as const;
type Stage = typeof STAGES[number] | "total";

/** One checkout this measures: its modules, and its view model. */
interface Side {
  name: string;
  // deno-lint-ignore no-explicit-any
  m: Record<string, any>;
  // deno-lint-ignore no-explicit-any
  vm: any;
}

/** A round's messages, as the UTF-8 bytes of their Redis envelopes (built by `side`). */
function messages(side: Side, first: number): Uint8Array[] {
  const { m } = side;
  const { received, started, succeeded } = taskShapes(m);
  const heartbeat = new m.EventShape("worker-heartbeat", [
    "freq",
    "active",
    "processed",
    "loadavg",
    "sw_ident",
    "sw_ver",
    "sw_sys",
  ]);
  const writer = new m.EventListWriter({ hostname: HOSTNAME, pid: 4242 });
  const info = { exchange: "celeryev", routing_key: "task.multi" };
  const out: Uint8Array[] = [];
  const flush = (all: boolean) => {
    while (writer.length >= BATCH || (all && writer.length > 0)) {
      const message = m.encodeEventListMessage(writer.take(BATCH), HOSTNAME);
      out.push(m.encodeEnvelopeBytes(message, info, crypto.randomUUID()));
    }
  };
  let clock = first * 3;
  for (let i = first; i < first + tasks; i++) {
    const id = crypto.randomUUID();
    writer.addValues(received, [id, "bench.noop", "()", "{}", id, null, 0, null, null], ++clock);
    writer.addValues(started, [id], ++clock);
    writer.addValues(succeeded, [id, "1", 0.000123 * (1 + i % 7)], ++clock);
    if (i % 100 === 0) {
      writer.addValues(
        heartbeat,
        [2, 1, i, [0.5, 0.5, 0.5], "celeriac", "0.1.0", "Linux"],
        ++clock,
      );
    }
    flush(false);
  }
  flush(true);
  return out;
}

/** One round: µs per event by stage. */
function round(side: Side, raws: Uint8Array[]): Record<Stage, number> {
  const { m, vm } = side;
  const us: Record<Stage, number> = { envelope: 0, events: 0, model: 0, total: 0 };
  let events = 0;
  for (const raw of raws) {
    const t0 = performance.now();
    const env = m.decodeEnvelope(m.utf8Text(raw));
    const t1 = performance.now();
    const list = m.decodeEventMessage(env);
    const t2 = performance.now();
    for (const e of list) vm.apply(e);
    const t3 = performance.now();
    us.envelope += t1 - t0;
    us.events += t2 - t1;
    us.model += t3 - t2;
    events += list.length;
  }
  vm.takeChanges();
  for (const s of STAGES) us[s] = us[s] * 1000 / events;
  us.total = us.envelope + us.events + us.model;
  return us;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const sides: Side[] = (await importSides([
  "src/protocol/event_writer.ts",
  "src/protocol/events.ts",
  "src/protocol/envelope.ts",
  "src/protocol/utf8_text.ts",
  "src/dashboard/view_model.ts",
], base)).map((side) => ({ ...side, vm: new side.m.ViewModel() }));
const figures = sides.map(() => [] as Record<Stage, number>[]);
const heap0 = Deno.memoryUsage().heapUsed;
for (let r = -2; r < rounds; r++) {
  // Rotated: neither side runs first in every round.
  const order = r % 2 === 0 ? sides.map((_, k) => k) : sides.map((_, k) => k).reverse();
  for (const k of order) {
    const raws = messages(sides[k], (r + 2) * tasks);
    const f = round(sides[k], raws);
    if (r >= 0) figures[k].push(f);
  }
}
const heap1 = Deno.memoryUsage().heapUsed;
const all: Stage[] = [...STAGES, "total"];
console.log(
  `${tasks} no-op tasks' events a round, ${rounds} rounds (median µs per event; heap +${
    ((heap1 - heap0) / 1048576).toFixed(1)
  } MiB):`,
);
for (const [k, side] of sides.entries()) {
  console.log(
    `  ${side.name}: ${
      all.map((s) => `${s} ${median(figures[k].map((f) => f[s])).toFixed(3)}`)
        .join(", ")
    }`,
  );
}
if (sides.length === 2) {
  const ratio = (s: Stage) => median(figures[0].map((f, i) => f[s] / figures[1][i][s]));
  console.log(
    `  this / base, median of the rounds' ratios: ${
      all.map((s) => `${s} ${ratio(s).toFixed(3)}`).join(", ")
    }`,
  );
}
