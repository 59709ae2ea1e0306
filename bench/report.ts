// deno-lint-ignore-file no-console
/**
 * The benchmark's output: a table per broker and one summary line per
 * workload.
 *
 * @module
 */

import type { Options, Side, SideResult } from "./common.ts";

const int = (x: number) => Math.round(x).toLocaleString("en-US");
const fixed = (x: number, d = 2) => x.toFixed(d);
const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined ? "n/a" : `${(a / b).toFixed(2)}x`;
}

/**
 * Print both sides' figures side by side.
 *
 * @example
 * ```ts ignore
 * printTable("RabbitMQ (rpc:// results)", opts, { celeriac, celery });
 * ```
 *
 * @param title the broker, shown above the table
 * @param opts the bench's options
 * @param r each side's figures
 */
export function printTable(
  title: string,
  opts: Options,
  r: Partial<Record<Side, SideResult>>,
): void {
  type Row = [string, (s: SideResult) => number, (x: number) => string];
  const rows: Row[] = [
    [`enqueue ${opts.tasks} tasks (client)`, (s) => s.enqueueSeconds, (x) => `${fixed(x)} s`],
    ["worker startup (spawn → first take)", (s) => s.startupMs, (x) => `${int(x)} ms`],
    [`drain (first take → ${opts.tasks} results)`, (s) => s.drainMs / 1000, (x) => `${fixed(x)} s`],
    ["drain throughput", (s) => s.drainTasksPerSecond, (x) => `${int(x)} tasks/s`],
    [
      "  incl. startup (from spawn)",
      (s) => s.drainTasksPerSecondFromSpawn,
      (x) => `${int(x)} tasks/s`,
    ],
    ["round trip p50", (s) => s.roundtrip.p50, (x) => `${fixed(x, 3)} ms`],
    ["round trip p90", (s) => s.roundtrip.p90, (x) => `${fixed(x, 3)} ms`],
    ["round trip p99", (s) => s.roundtrip.p99, (x) => `${fixed(x, 3)} ms`],
    ["round trip mean", (s) => s.roundtrip.mean, (x) => `${fixed(x, 3)} ms`],
    ["round trip min", (s) => s.roundtrip.min, (x) => `${fixed(x, 3)} ms`],
    ["round trip max", (s) => s.roundtrip.max, (x) => `${fixed(x, 3)} ms`],
    ["worker peak RSS (sampled sum)", (s) => s.memory.peakRssKiB, mib],
    ["worker VmHWM (sum per process)", (s) => s.memory.hwmSumKiB, mib],
    ["worker peak PSS (sampled sum)", (s) => s.memory.peakPssKiB, mib],
    ["worker processes", (s) => s.memory.pids.length, (x) => String(x)],
  ];
  const table = [
    [title, "celeriac", "celery 5.2.6", "celeriac/celery"],
    ...rows.map(([label, get, show]) => {
      const a = r.celeriac ? get(r.celeriac) : undefined;
      const b = r.celery ? get(r.celery) : undefined;
      return [label, a === undefined ? "-" : show(a), b === undefined ? "-" : show(b), ratio(a, b)];
    }),
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
 * One line per workload: both figures and their ratio.
 *
 * @example
 * ```ts ignore
 * for (const line of summaries("amqp", opts, { celeriac, celery })) console.log(line);
 * ```
 *
 * @param prefix the broker, starting each line
 * @param opts the bench's options
 * @param r each side's figures
 * @returns the lines
 */
export function summaries(
  prefix: string,
  opts: Options,
  r: Partial<Record<Side, SideResult>>,
): string[] {
  const { celeriac: a, celery: b } = r;
  const both = <T>(get: (s: SideResult) => T, show: (x: T) => string) =>
    `celeriac ${a ? show(get(a)) : "-"} | celery ${b ? show(get(b)) : "-"}`;
  const faster = (x: number, y: number) =>
    x <= y ? `${(y / x).toFixed(1)}x faster` : `${(x / y).toFixed(1)}x slower`;
  const lines = [
    `drain ${opts.tasks} tasks: ${both((s) => s.drainTasksPerSecond, (x) => `${int(x)} tasks/s`)}` +
    ` | ratio ${a && b ? `${(a.drainTasksPerSecond / b.drainTasksPerSecond).toFixed(1)}x` : "n/a"}`,
  ];
  for (const p of ["p50", "p99"] as const) {
    lines.push(
      `round trip ${p}: ${both((s) => s.roundtrip[p], (x) => `${fixed(x, 2)} ms`)}` +
        ` | ratio ${a && b ? faster(a.roundtrip[p], b.roundtrip[p]) : "n/a"}`,
    );
  }
  lines.push(
    `worker peak RSS during drain: ${
      both((s) => s.memory, (m) => `${mib(m.peakRssKiB)} (${m.pids.length} process(es))`)
    } | ratio ${a && b ? `${(a.memory.peakRssKiB / b.memory.peakRssKiB).toFixed(2)}x` : "n/a"}`,
    `worker peak PSS during drain: ${both((s) => s.memory.peakPssKiB, mib)}` +
      ` | ratio ${a && b ? `${(a.memory.peakPssKiB / b.memory.peakPssKiB).toFixed(2)}x` : "n/a"}`,
  );
  return lines.map((l) => `${prefix}: ${l}`);
}
