// deno-lint-ignore-file no-console
/**
 * The benchmark's output: one table per broker with every side's figures
 * and Celeriac's ratios to each peer, and one summary line per target.
 *
 * @module
 */

import {
  type BrokerKind,
  CPU_TASK_MS,
  type Options,
  type Side,
  type SideResult,
} from "./common.ts";
import type { SideReport } from "./workloads.ts";

const int = (x: number) => Math.round(x).toLocaleString("en-US");
const fixed = (x: number, d = 2) => x.toFixed(d);
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
const COLUMNS: { side: Side; title: string }[] = [
  { side: "celeriac", title: "celeriac" },
  { side: "celery", title: "celery 5.2.6" },
  { side: "bullmq", title: "bullmq c=100" },
  { side: "raw", title: "raw client" },
];
const RATIOS: Side[] = ["bullmq", "raw", "celery"];

type Row = [string, (s: SideReport) => number | null | undefined, (x: number) => string];

function rows(opts: Options): Row[] {
  const drain = (get: (d: SideResult) => number) => (s: SideReport) => get(s.drain);
  return [
    [
      `A drain ${opts.tasks}, own client`,
      drain((d) => d.drainTasksPerSecond),
      (x) => `${int(x)}/s`,
    ],
    [
      "A drain, other Celery client's tasks",
      (s) => s.crossDrain?.drainTasksPerSecond,
      (x) => `${int(x)}/s`,
    ],
    [
      "A drain, own client, Redis results",
      (s) => s.redisResults?.drainTasksPerSecond,
      (x) => `${int(x)}/s`,
    ],
    [
      "A incl. startup (own client)",
      drain((d) => d.drainTasksPerSecondFromSpawn),
      (x) => `${int(x)}/s`,
    ],
    ["A worker startup", drain((d) => d.startupMs), (x) => `${int(x)} ms`],
    ["A enqueue before the drain", drain((d) => d.enqueueSeconds), (x) => `${fixed(x)} s`],
    ["B round trip p50", (s) => s.drain.roundtrip?.p50, (x) => `${fixed(x, 3)} ms`],
    ["B round trip p99", (s) => s.drain.roundtrip?.p99, (x) => `${fixed(x, 3)} ms`],
    ["C enqueue, one call at a time", (s) => s.enqueue?.single, (x) => `${int(x)}/s`],
    ["C enqueue, batch API", (s) => s.enqueue?.batch, (x) => `${int(x)}/s`],
    [
      `D CPU-bound ${opts.cpuTasks} x ${CPU_TASK_MS} ms, efficiency`,
      (s) => s.cpu?.efficiency,
      pct,
    ],
    ["D drain time", (s) => s.cpu && s.cpu.drainMs / 1000, (x) => `${fixed(x)} s`],
    [
      `E burst of ${opts.burst} onto an idle worker`,
      (s) => s.burst?.ms,
      (x) => `${int(x)} ms`,
    ],
    ["A worker peak RSS (sum)", drain((d) => d.memory.peakRssKiB), mib],
    ["A worker peak PSS (sum)", drain((d) => d.memory.peakPssKiB), mib],
    ["A worker processes", drain((d) => d.memory.pids.length), String],
  ];
}

/**
 * Print every side's figures side by side, with Celeriac / peer ratios.
 *
 * @example
 * ```ts ignore
 * printTable("RabbitMQ (rpc:// results)", opts, results);
 * ```
 *
 * @param title the broker, shown above the table
 * @param opts the bench's options
 * @param r each side's figures
 */
export function printTable(
  title: string,
  opts: Options,
  r: Partial<Record<Side, SideReport>>,
): void {
  const cols = COLUMNS.filter((c) => r[c.side]);
  const ratios = RATIOS.filter((p) => r[p] && r.celeriac);
  const table = [
    [title, ...cols.map((c) => c.title), ...ratios.map((p) => `celeriac/${p}`)],
    ...rows(opts).filter(([, get]) => cols.some((c) => get(r[c.side]!) != null)).map(
      ([label, get, show]) => {
        const v = (side: Side) => r[side] ? get(r[side]!) ?? undefined : undefined;
        return [
          label,
          ...cols.map((c) => {
            const x = v(c.side);
            return x === undefined ? "-" : show(x);
          }),
          ...ratios.map((p) => {
            const a = v("celeriac");
            const b = v(p);
            return a === undefined || b === undefined ? "-" : `${(a / b).toFixed(2)}x`;
          }),
        ];
      },
    ),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  const line = (row: string[]) =>
    row.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("   ");
  console.log();
  console.log(line(table[0]));
  console.log(widths.map((w) => "-".repeat(w)).join("   "));
  for (const row of table.slice(1)) console.log(line(row));
}

/**
 * One line per target of issue 13, with the figures it compares.
 *
 * @example
 * ```ts ignore
 * for (const line of summaries("redis", results)) console.log(line);
 * ```
 *
 * @param broker the broker, starting each line
 * @param r each side's figures
 * @returns the lines
 */
export function summaries(broker: BrokerKind, r: Partial<Record<Side, SideReport>>): string[] {
  const c = r.celeriac;
  if (!c) return [];
  const lines: string[] = [];
  const a = c.drain.drainTasksPerSecond;
  const vs = (side: Side, what: string) => {
    const b = r[side]?.drain.drainTasksPerSecond;
    return b ? `${(a / b).toFixed(2)}x ${what} (${int(b)}/s)` : null;
  };
  const drainVs = [vs("bullmq", "BullMQ"), vs("raw", "the raw client"), vs("celery", "Celery")]
    .filter(Boolean);
  lines.push(`A drain: celeriac ${int(a)}/s = ${drainVs.join(", ")}`);
  if (c.redisResults) {
    const raw = r.raw?.drain.drainTasksPerSecond;
    lines.push(
      `A drain with the Redis result backend: celeriac ${
        int(c.redisResults.drainTasksPerSecond)
      }/s${
        raw ? ` (${(c.redisResults.drainTasksPerSecond / raw).toFixed(2)}x the raw rpc loop)` : ""
      }`,
    );
  }
  if (c.crossDrain) {
    lines.push(
      `A drain of Python-enqueued tasks: celeriac ${int(c.crossDrain.drainTasksPerSecond)}/s`,
    );
  }
  const rt = c.drain.roundtrip;
  const raw = r.raw?.drain.roundtrip;
  if (rt) {
    lines.push(
      `B round trip: celeriac p50 ${fixed(rt.p50, 3)} ms, p99 ${fixed(rt.p99, 3)} ms (${
        fixed(rt.p99 / rt.p50, 1)
      }x its p50)${
        raw ? `; raw client p50 ${fixed(raw.p50, 3)} ms (${fixed(rt.p50 / raw.p50, 2)}x)` : ""
      }${interleaving(c.drain.roundtripRounds)}`,
    );
  }
  if (c.enqueue) {
    const py = r.celery?.enqueue?.single;
    lines.push(
      `C enqueue: celeriac delay() loop ${int(c.enqueue.single)}/s${
        py ? ` (${fixed(c.enqueue.single / py)}x Python's ${int(py)}/s)` : ""
      }, batch ${c.enqueue.batch ? int(c.enqueue.batch) : "-"}/s`,
    );
  }
  if (c.cpu) lines.push(`D CPU-bound: celeriac efficiency ${pct(c.cpu.efficiency)}`);
  lines.push(`A worker peak RSS: celeriac ${mib(c.drain.memory.peakRssKiB)}`);
  return lines.map((l) => `${broker}: ${l}`);
}

/** How B was measured, when interleaved: rounds, block size, the per-round range of the ratio. */
function interleaving(r: SideReport["drain"]["roundtripRounds"]): string {
  if (!r) return "";
  const range = r.vsRaw ? `; per round ${fixed(r.vsRaw.min, 2)}–${fixed(r.vsRaw.max, 2)}x` : "";
  return ` [${r.rounds} interleaved rounds of ${r.block}${range}]`;
}
