// deno-lint-ignore-file no-console
/**
 * `deno run -A bench/memory_map.ts`: where a Celeriac worker's memory goes.
 * Starts the bench's worker (`-c 2`, the bench's app, default command
 * `deno run -A worker.ts`, which applies its own V8 flags), reads
 * `/proc/<pid>/smaps` when it is ready (idle) and at its highest RSS while it
 * drains N no-op tasks given to it at once, and prints both by kind of
 * mapping:
 *
 * - `deno binary`: pages of the `deno` executable (file-backed, shared);
 * - `other files`: shared libraries and other mapped files;
 * - `malloc arenas`: glibc's per-thread arenas (anonymous mappings inside a
 *   64 MiB-aligned 64 MiB reservation) and the main arena (`[heap]`);
 * - `thread stacks`: `[stack]` and anonymous mappings preceded by a guard page;
 * - `anonymous, other`: the rest — V8's heaps and code, and anything else
 *   mapped anonymously.
 *
 * Options: `--tasks N` (20000), `--redis URL` (db 12 = broker, db 13 =
 * results, both FLUSHDB'd: run it under the heavy lock), `--env K=V`
 * (repeatable: the worker's environment, e.g. `MALLOC_ARENA_MAX=2` or
 * `CELERIAC_V8_FLAGS=...`), `--arg A` (repeatable: extra worker arguments),
 * `--json FILE` (write both breakdowns), `--mappings N` (also print the N
 * largest mappings at the peak; default 0).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { startBenchWorker, stopTree } from "./proc.ts";
import { BENCH_QUEUE, noop } from "./tasks.ts";
import { openProbeDbs } from "./probe_dbs.ts";

/** The queue the worker consumes: the tasks are renamed into it at once. */
const DRAIN_QUEUE = `${BENCH_QUEUE}.drain`;

/** glibc's HEAP_MAX_SIZE on 64-bit: each non-main arena is a reservation of this size and alignment. */
const ARENA_BYTES = 64 * 1024 * 1024;

/** One mapping of `/proc/<pid>/smaps`, sizes in KiB. */
export interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  path: string;
  rss: number;
  pss: number;
  anonymous: number;
}

/**
 * Parse `/proc/<pid>/smaps`.
 *
 * @example
 * ```ts ignore
 * const maps = parseSmaps(Deno.readTextFileSync(`/proc/${Deno.pid}/smaps`));
 * ```
 */
export function parseSmaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  let current: Mapping | null = null;
  for (const line of text.split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      current = {
        start: BigInt(`0x${head[1]}`),
        end: BigInt(`0x${head[2]}`),
        perms: head[3],
        path: head[4],
        rss: 0,
        pss: 0,
        anonymous: 0,
      };
      out.push(current);
      continue;
    }
    const field = /^(Rss|Pss|Anonymous):\s+(\d+) kB/.exec(line);
    if (field && current) {
      const key = field[1] === "Rss" ? "rss" : field[1] === "Pss" ? "pss" : "anonymous";
      current[key] = Number(field[2]);
    }
  }
  return out;
}

/**
 * The kind of each mapping (see the module documentation).
 *
 * @example
 * ```ts ignore
 * const kinds = classify(parseSmaps(text), Deno.execPath());
 * ```
 */
export function classify(maps: Mapping[], exe: string): string[] {
  const arena = BigInt(ARENA_BYTES);
  // Non-main arenas: an anonymous mapping starting on a 64 MiB boundary, and
  // whatever follows it up to the end of that 64 MiB reservation.
  const arenaBases = new Set<bigint>();
  for (const m of maps) {
    if (m.path === "" && m.start % arena === 0n && m.perms.startsWith("rw")) {
      const reservationEnd = m.start + arena;
      const covered = maps.filter((n) =>
        n.path === "" && n.start >= m.start && n.end <= reservationEnd
      );
      const last = covered.reduce((a, n) => (n.end > a ? n.end : a), 0n);
      if (last === reservationEnd) arenaBases.add(m.start);
    }
  }
  const inArena = (m: Mapping) => [...arenaBases].some((b) => m.start >= b && m.end <= b + arena);
  return maps.map((m, i) => {
    if (m.path === exe || m.path === `${exe} (deleted)`) return "deno binary";
    if (m.path === "[heap]") return "malloc arenas";
    if (m.path === "[stack]") return "thread stacks";
    if (m.path.startsWith("[")) return "other files";
    if (m.path !== "") return "other files";
    if (inArena(m)) return "malloc arenas";
    const prev = maps[i - 1];
    if (prev && prev.end === m.start && prev.perms === "---p" && prev.end - prev.start === 4096n) {
      return "thread stacks";
    }
    return "anonymous, other";
  });
}

/** Sum of RSS / PSS / anonymous KiB per kind. */
export type Breakdown = Record<string, { rss: number; pss: number; anonymous: number }>;

function breakdown(pid: number): { total: number; kinds: Breakdown; maps: Mapping[] } {
  const maps = parseSmaps(Deno.readTextFileSync(`/proc/${pid}/smaps`));
  const kinds: Breakdown = {};
  const exe = Deno.readLinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, "");
  classify(maps, exe).forEach((k, i) => {
    const sum = kinds[k] ??= { rss: 0, pss: 0, anonymous: 0 };
    sum.rss += maps[i].rss;
    sum.pss += maps[i].pss;
    sum.anonymous += maps[i].anonymous;
  });
  return { total: maps.reduce((s, m) => s + m.rss, 0), kinds, maps };
}

function vmRssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) : 0;
}

const mib = (kib: number) => (kib / 1024).toFixed(1).padStart(7);

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      tasks: { type: "string", default: "20000" },
      redis: { type: "string", default: "redis://127.0.0.1:6379" },
      env: { type: "string", multiple: true, default: [] },
      arg: { type: "string", multiple: true, default: [] },
      json: { type: "string" },
      mappings: { type: "string", default: "0" },
      output: { type: "string" },
    },
  });
  const n = Number(values.tasks);
  const dbs = await openProbeDbs(values.redis);
  const { brokerUrl, backendUrl, broker, results } = dbs;
  const env = Object.fromEntries(values.env.map((kv) => {
    const i = kv.indexOf("=");
    return [kv.slice(0, i), kv.slice(i + 1)];
  }));
  const worker = startBenchWorker({
    broker: brokerUrl,
    backend: backendUrl,
    queue: DRAIN_QUEUE,
    env,
    workerArgs: values.arg,
  });
  const pid = worker.child.pid;
  try {
    await worker.ready;
    await new Promise((r) => setTimeout(r, 1000));
    const idle = breakdown(pid);
    for (let sent = 0; sent < n; sent += 1000) {
      await noop.delayMany(Array.from({ length: Math.min(1000, n - sent) }, () => []));
    }
    let peak = idle;
    let peakRss = vmRssKiB(pid);
    const started = performance.now();
    await broker.rename(BENCH_QUEUE, DRAIN_QUEUE);
    let polls = 0;
    while (true) {
      const rss = vmRssKiB(pid);
      if (rss > peakRss) {
        peakRss = rss;
        peak = breakdown(pid);
      }
      if (++polls % 5 === 0 && await results.dbsize() >= n) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const seconds = (performance.now() - started) / 1000;
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`))?.[1]);
    const kinds = [...new Set([...Object.keys(idle.kinds), ...Object.keys(peak.kinds)])].sort();
    console.log(
      `${n} tasks in ${seconds.toFixed(2)} s (${Math.round(n / seconds)}/s); ` +
        `env ${JSON.stringify(env)} args ${JSON.stringify(values.arg)}`,
    );
    console.log(
      `${"MiB".padEnd(18)} ${"idle RSS".padStart(9)} ${"anon".padStart(7)}   ` +
        `${"peak RSS".padStart(9)} ${"anon".padStart(7)} ${"PSS".padStart(7)}`,
    );
    for (const k of kinds) {
      const a = idle.kinds[k] ?? { rss: 0, anonymous: 0, pss: 0 };
      const b = peak.kinds[k] ?? { rss: 0, anonymous: 0, pss: 0 };
      console.log(
        `${k.padEnd(18)} ${mib(a.rss)}   ${mib(a.anonymous)}   ${mib(b.rss)}   ${
          mib(b.anonymous)
        } ${mib(b.pss)}`,
      );
    }
    console.log(
      `${"total".padEnd(18)} ${mib(idle.total)}             ${mib(peak.total)}` +
        `   (VmRSS peak seen ${mib(peakRss).trim()}, VmHWM ${mib(hwm).trim()})`,
    );
    const top = Number(values.mappings);
    if (top > 0) {
      const kindsAtPeak = classify(peak.maps, Deno.readLinkSync(`/proc/${pid}/exe`));
      peak.maps.map((m, i) => ({ m, k: kindsAtPeak[i] }))
        .sort((x, y) => y.m.rss - x.m.rss).slice(0, top)
        .forEach(({ m, k }) =>
          console.log(
            `  ${m.start.toString(16)}-${m.end.toString(16)} ${m.perms} ` +
              `${mib(Number(m.end - m.start) / 1024)} MiB mapped, ${
                mib(m.rss)
              } RSS  ${k} ${m.path}`,
          )
        );
    }
    if (values.json) {
      await Deno.writeTextFile(
        values.json,
        JSON.stringify({ n, seconds, env, idle: idle.kinds, peak: peak.kinds, peakRss, hwm }),
      );
    }
  } finally {
    await stopTree(worker.child);
    if (values.output) await Deno.writeTextFile(values.output, worker.output());
    await dbs.close();
  }
}

if (import.meta.main) await main();
