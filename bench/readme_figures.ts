/**
 * The README's benchmark figures, written from `bench/results.json` (pure:
 * results in, markdown out). `bench/readme_bench.ts` puts them between the
 * README's marker comments; `tests/readme_bench_test.ts` checks they agree.
 *
 * @module
 */

/** A side's figures of one workload, as `bench/main.ts` writes them. */
interface Drain {
  drainTasksPerSecond: number;
  startupMs: number;
  roundtrip?: { p50: number; p99: number } | null;
  memory: { peakRssKiB: number; peakPssKiB: number; pids: number[] };
  roundtripRounds?: { rounds: number; block: number; vsRaw?: { min: number; max: number } };
}

interface SideFigures {
  drain: Drain;
  crossDrain?: Drain | null;
  redisResults?: Drain | null;
  enqueue?: { single: number; batch: number | null } | null;
  cpu?: { efficiency: number } | null;
  burst?: { ms: number } | null;
}

type Sides = Partial<Record<"celeriac" | "celery" | "bullmq" | "raw", SideFigures>>;

/** The parts of `bench/results.json` the README shows. */
export interface BenchResults {
  date: string;
  options: { tasks: number; chord: number; burst: number; cpuTasks: number };
  environment: { celeriac: string; cpus: number; loadAverageAtStart: number[] };
  results: { redis: Sides; amqp: Sides };
  chord?: Record<string, { seconds: number }>;
}

/** Marker comments around each generated block: `[begin, end]`. */
export const MARKERS = {
  bench: ["<!-- bench:begin -->", "<!-- bench:end -->"],
  status: ["<!-- bench-status:begin -->", "<!-- bench-status:end -->"],
} as const;

const int = (x: number) => Math.round(x).toLocaleString("en-US");
const ms = (x: number) => x.toFixed(2);
const pct = (x: number) => `${Math.round(x * 100)} %`;
const mib = (kib: number) => String(Math.round(kib / 1024));
const times = (x: number) => `${x.toFixed(2)}×`;
const DASH = "–";

/** `a / b` as a ratio cell, `–` when either is missing. */
function ratio(a: number | null | undefined, b: number | null | undefined): string {
  return a == null || b == null || b === 0 ? DASH : times(a / b);
}

/** The load average at the start as `1.73 / 2.95 / 3.84`. */
export function loadAverage(r: BenchResults): string {
  return r.environment.loadAverageAtStart.map((x) => x.toFixed(2)).join(" / ");
}

/** `2026-12-06 08:07 UTC` from the run's ISO date. */
function when(r: BenchResults): string {
  return `${r.date.slice(0, 10)} ${r.date.slice(11, 16)} UTC`;
}

function table(head: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

function redisTable(r: BenchResults): string {
  const s = r.results.redis;
  const [c, py, bull, raw] = [s.celeriac, s.celery, s.bullmq, s.raw];
  const peers = [bull, raw, py];
  const row = (
    label: string,
    get: (x: SideFigures) => number | null | undefined,
    show: (x: number) => string,
    sides: (SideFigures | undefined)[] = [c, py, bull, raw],
  ) => {
    const v = (x: SideFigures | undefined) => (x ? get(x) : undefined);
    const cells = sides.map((x) => {
      const n = v(x);
      return n == null ? DASH : show(n);
    });
    return [label, ...cells, ...peers.map((p) => ratio(v(c), v(p)))];
  };
  const rt = (x: SideFigures | undefined) =>
    x?.drain.roundtrip ? `${ms(x.drain.roundtrip.p50)} / ${ms(x.drain.roundtrip.p99)}` : DASH;
  const mem = (x: SideFigures | undefined) => {
    if (!x) return DASH;
    const m = x.drain.memory;
    const procs = m.pids.length > 1 ? ` (${m.pids.length} procs)` : "";
    return `${mib(m.peakRssKiB)} / ${mib(m.peakPssKiB)}${procs}`;
  };
  const p50 = (x: SideFigures | undefined) => x?.drain.roundtrip?.p50;
  const rss = (x: SideFigures | undefined) => x?.drain.memory.peakRssKiB;
  const chord = r.chord ?? {};
  return table(
    [
      "Redis (Redis results)",
      "Celeriac",
      "Celery 5.2.6",
      "BullMQ c=100",
      "raw ioredis",
      "×BullMQ",
      "×raw",
      "×Celery",
    ],
    [
      row(
        `A drain ${int(r.options.tasks)}, own client (tasks/s)`,
        (x) => x.drain.drainTasksPerSecond,
        int,
      ),
      row(
        "A drain, the other Celery client's",
        (x) => x.crossDrain?.drainTasksPerSecond,
        int,
      ),
      row("A worker startup (ms)", (x) => x.drain.startupMs, int),
      [
        "B round trip p50 / p99 (ms)",
        rt(c),
        rt(py),
        rt(bull),
        rt(raw),
        ...peers.map((p) => ratio(p50(c), p50(p))),
      ],
      row("C enqueue, one call at a time (/s)", (x) => x.enqueue?.single, int),
      row("C enqueue, batch API (/s)", (x) => x.enqueue?.batch, int),
      row(
        `D ${int(r.options.cpuTasks)} × 5 ms CPU-bound, efficiency`,
        (x) => x.cpu?.efficiency,
        pct,
      ),
      row(
        `E burst of ${int(r.options.burst)} onto an idle worker`,
        (x) => x.burst?.ms,
        (x) => `${int(x)} ms`,
      ),
      [
        "A worker peak RSS / PSS (MiB)",
        mem(c),
        mem(py),
        mem(bull),
        mem(raw),
        ...peers.map((p) => ratio(rss(c), rss(p))),
      ],
      [
        `chord of ${int(r.options.chord)} (apply → body result)`,
        chord.celeriac ? `${int(chord.celeriac.seconds * 1000)} ms` : DASH,
        chord.celery ? `${int(chord.celery.seconds * 1000)} ms` : DASH,
        DASH,
        DASH,
        DASH,
        DASH,
        ratio(chord.celery?.seconds, chord.celeriac?.seconds),
      ],
    ],
  );
}

function amqpTable(r: BenchResults): string {
  const s = r.results.amqp;
  const [c, py, raw] = [s.celeriac, s.celery, s.raw];
  const cell = (n: number | null | undefined, show: (x: number) => string) =>
    n == null ? DASH : show(n);
  const row = (
    label: string,
    get: (x: SideFigures) => number | null | undefined,
    show: (x: number) => string,
  ) => {
    const v = (x: SideFigures | undefined) => (x ? get(x) : undefined);
    return [
      label,
      cell(v(c), show),
      cell(v(py), show),
      cell(v(raw), show),
      ratio(v(c), v(raw)),
      ratio(v(c), v(py)),
    ];
  };
  const rt = (x: SideFigures | undefined) =>
    x?.drain.roundtrip ? `${ms(x.drain.roundtrip.p50)} / ${ms(x.drain.roundtrip.p99)}` : DASH;
  const pair = (x: SideFigures | undefined) =>
    x?.enqueue
      ? `${int(x.enqueue.single)} / ${x.enqueue.batch == null ? DASH : int(x.enqueue.batch)}`
      : DASH;
  const rss = (x: SideFigures | undefined) => {
    if (!x) return DASH;
    const n = x.drain.memory.pids.length;
    return `${mib(x.drain.memory.peakRssKiB)}${n > 1 ? ` (${n} procs)` : ""}`;
  };
  const one = (x: SideFigures | undefined) => x?.enqueue?.single;
  const batch = (x: SideFigures | undefined) => x?.enqueue?.batch;
  const redisResults = (x: SideFigures | undefined) => x?.redisResults?.drainTasksPerSecond;
  const drain = (x: SideFigures | undefined) => x?.drain.drainTasksPerSecond;
  return table(
    ["RabbitMQ (`rpc://` results)", "Celeriac", "Celery 5.2.6", "raw amqplib", "×raw", "×Celery"],
    [
      row(
        `A drain ${int(r.options.tasks)}, own client (tasks/s)`,
        (x) => x.drain.drainTasksPerSecond,
        int,
      ),
      row("A drain, the other Celery client's", (x) => x.crossDrain?.drainTasksPerSecond, int),
      [
        "A drain, Redis result backend",
        cell(redisResults(c), int),
        cell(redisResults(py), int),
        DASH,
        ratio(redisResults(c), drain(raw)),
        ratio(redisResults(c), redisResults(py)),
      ],
      [
        "B round trip p50 / p99 (ms)",
        rt(c),
        rt(py),
        rt(raw),
        ratio(c?.drain.roundtrip?.p50, raw?.drain.roundtrip?.p50),
        ratio(c?.drain.roundtrip?.p50, py?.drain.roundtrip?.p50),
      ],
      [
        "C enqueue, one call / batch (/s)",
        pair(c),
        pair(py),
        pair(raw),
        `${ratio(one(c), one(raw))} / ${ratio(batch(c), batch(raw))}`,
        `${ratio(one(c), one(py))} / ${ratio(batch(c), batch(py))}`,
      ],
      row("D CPU-bound efficiency", (x) => x.cpu?.efficiency, pct),
      [
        "A worker peak RSS (MiB)",
        rss(c),
        rss(py),
        rss(raw),
        ratio(c?.drain.memory.peakRssKiB, raw?.drain.memory.peakRssKiB),
        ratio(c?.drain.memory.peakRssKiB, py?.drain.memory.peakRssKiB),
      ],
    ],
  );
}

/** One sentence of a run's headline figures (for "the run before"). */
export function headline(r: BenchResults): string {
  const s = r.results.redis;
  const c = s.celeriac?.drain;
  const bull = s.bullmq?.drain.drainTasksPerSecond;
  const raw = s.raw?.drain.drainTasksPerSecond;
  const amqpC = r.results.amqp.celeriac?.drain.drainTasksPerSecond;
  const amqpRaw = r.results.amqp.raw?.drain.drainTasksPerSecond;
  const parts = [
    c && `Redis drain ${int(c.drainTasksPerSecond)}/s = ${ratio(c.drainTasksPerSecond, bull)} ` +
      `BullMQ (${bull == null ? DASH : int(bull)}/s) and ${ratio(c.drainTasksPerSecond, raw)} ` +
      `raw (${raw == null ? DASH : int(raw)}/s)`,
    c?.roundtrip && `round trip p50 / p99 ${ms(c.roundtrip.p50)} / ${ms(c.roundtrip.p99)} ms`,
    amqpC != null && `RabbitMQ drain ${ratio(amqpC, amqpRaw)} raw`,
  ].filter(Boolean);
  return `\`${r.environment.celeriac}\`, ${when(r)}, load average ${
    loadAverage(r)
  } at the start: ` +
    `${parts.join(", ")}.`;
}

/**
 * The Benchmarks section's block: the run, both tables, the round trip's
 * spread and the run before (its results, or the paragraph already written).
 */
export function benchBlock(r: BenchResults, before?: BenchResults | string): string {
  const c = r.results.redis.celeriac?.drain;
  const raw = r.results.redis.raw?.drain;
  const rounds = c?.roundtripRounds;
  const out = [
    `Latest full run (\`bench/results.json\`): Celeriac \`${r.environment.celeriac}\`, ${
      when(r)
    }, ` +
    `${r.environment.cpus} CPUs, load average ${loadAverage(r)} at the start (1, 5 and 15 ` +
    "minutes), the Celeriac worker as the default command `deno run -A worker.ts`. " +
    (rounds
      ? `Workload B of Celeriac and the raw client is measured interleaved (${rounds.rounds} ` +
        `rounds of ${rounds.block} round trips each, both workers and clients up). `
      : "") +
    "Compare the ratios within one run. Ratios are Celeriac's figure ÷ the peer's (for times " +
    "and memory, below 1× is better), except the chord's: Celery's time ÷ Celeriac's.",
    redisTable(r),
    amqpTable(r),
  ];
  const spread = [
    rounds?.vsRaw &&
    `the round trip's per-round ratio to raw ranged ${rounds.vsRaw.min.toFixed(2)}–` +
      `${times(rounds.vsRaw.max)}`,
    c?.roundtrip && `Celeriac's p99 was ${times(c.roundtrip.p99 / c.roundtrip.p50)} its own p50`,
    raw?.roundtrip && `raw's ${times(raw.roundtrip.p99 / raw.roundtrip.p50)} its p50`,
  ].filter(Boolean);
  if (spread.length) out.push(`In this run ${spread.join(", ")}.`);
  if (typeof before === "string") out.push(before);
  else if (before) out.push(`The run before: ${headline(before)}`);
  return out.join("\n\n");
}

/** The Status section's sentence of the latest run's headline figures. */
export function statusBlock(r: BenchResults): string {
  const s = r.results.redis;
  const c = s.celeriac;
  const drain = c?.drain.drainTasksPerSecond;
  const bull = s.bullmq?.drain.drainTasksPerSecond;
  const raw = s.raw?.drain.drainTasksPerSecond;
  const a = r.results.amqp;
  const parts = [
    `the Redis drain at ${drain == null ? DASH : int(drain)}/s, ${ratio(drain, bull)} BullMQ ` +
    `(${bull == null ? DASH : int(bull)}/s) and ${ratio(drain, raw)} the raw client ` +
    `(${raw == null ? DASH : int(raw)}/s)`,
    c && `the worker's peak RSS ${(c.drain.memory.peakRssKiB / 1024).toFixed(1)} MiB`,
    c?.drain.roundtripRounds?.vsRaw && c.drain.roundtrip && s.raw?.drain.roundtrip &&
    `round trip p50 ${ratio(c.drain.roundtrip.p50, s.raw.drain.roundtrip.p50)} the raw ` +
      `client's (per round ${c.drain.roundtripRounds.vsRaw.min.toFixed(2)}–` +
      `${times(c.drain.roundtripRounds.vsRaw.max)}), p99 ` +
      `${times(c.drain.roundtrip.p99 / c.drain.roundtrip.p50)} its own p50`,
    c?.enqueue?.batch != null && `batch enqueue ${int(c.enqueue.batch)}/s`,
    `one call at a time ${ratio(c?.enqueue?.single, s.celery?.enqueue?.single)} Python's`,
    c?.cpu && `CPU-bound efficiency ${pct(c.cpu.efficiency)}`,
    `a burst of ${int(r.options.burst)} onto an idle worker ` +
    `${ratio(s.bullmq?.burst?.ms, c?.burst?.ms)} faster than BullMQ`,
    `a chord of ${int(r.options.chord)} ` +
    `${ratio(r.chord?.celery?.seconds, r.chord?.celeriac?.seconds)} faster than Celery`,
    `RabbitMQ's drain ${
      ratio(a.celeriac?.drain.drainTasksPerSecond, a.raw?.drain.drainTasksPerSecond)
    } ` +
    `its raw client, ${
      ratio(a.celeriac?.redisResults?.drainTasksPerSecond, a.raw?.drain.drainTasksPerSecond)
    } with the Redis backend`,
  ].filter(Boolean);
  return `Latest full run (\`${r.environment.celeriac}\`, ${when(r)}, ${r.environment.cpus} ` +
    `CPUs, load average ${loadAverage(r)} at the start): ${parts.join(", ")}.`;
}

/**
 * `text` with the block between `markers` replaced by `block`.
 *
 * @throws {Error} when the markers are missing or out of order
 */
export function replaceBlock(
  text: string,
  markers: readonly [string, string],
  block: string,
): string {
  const start = text.indexOf(markers[0]);
  const end = text.indexOf(markers[1]);
  if (start < 0 || end < start) {
    throw new Error(`README.md: add the marker comments ${markers[0]} and ${markers[1]}`);
  }
  return `${text.slice(0, start + markers[0].length)}\n\n${block}\n\n${text.slice(end)}`;
}
