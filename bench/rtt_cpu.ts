/**
 * Where a side's sequential round trips spend CPU time, and how long each
 * thread on their path waited for a free core: the scheduler's figures
 * (`/proc/<pid>/task/<tid>/schedstat`: time on a CPU, time runnable but
 * waiting on a run queue) of the side's processes and of redis-server,
 * read before and after each of its blocks (`bench/rtt_pair.ts --cpu`).
 * On this 2-core host a thread woken by a hand-off (the Web Worker, the
 * worker's main thread back, redis-server, the client) runs only once a
 * core is free: its run-queue wait is that hop's share of the round trip
 * that no code change on the thread itself removes.
 *
 * @module
 */

import { type ThreadSchedstat, threadSchedstats } from "./proc.ts";

/** A process of a side, by role (`client`, `worker`, `redis`). */
export interface MeteredProcess {
  role: string;
  pid: number;
}

/** Nanoseconds on a CPU and waiting for one, by thread group (`role:kind`). */
export type ThreadTimes = Map<string, { cpu: number; wait: number }>;

/** The kind of a thread, named as `threadCpuNs` names them. */
function kind(pid: number, tid: string, t: ThreadSchedstat): string {
  if (tid === String(pid)) return "main";
  if (/^worker-\d+$/.test(t.comm)) return "web workers";
  if (t.comm.startsWith("V8 ")) return "V8 helpers";
  return "other";
}

/** Every thread of `processes`, by tid, with its group. */
function snapshot(processes: readonly MeteredProcess[]): Map<string, [string, ThreadSchedstat]> {
  const out = new Map<string, [string, ThreadSchedstat]>();
  for (const p of processes) {
    for (const [tid, t] of threadSchedstats(p.pid)) {
      out.set(`${p.pid}/${tid}`, [`${p.role}:${kind(p.pid, tid, t)}`, t]);
    }
  }
  return out;
}

/**
 * Meters the blocks of one side: {@link CpuMeter.around} a block adds its
 * threads' times; {@link CpuMeter.perRoundTrip} gives them per round trip.
 *
 * @example
 * ```ts ignore
 * const meter = new CpuMeter(() => [{ role: "client", pid: Deno.pid }, { role: "redis", pid: redisPid }]);
 * const lat = await meter.around(250, () => side.run(230, 20));
 * meter.perRoundTrip(); // Map { "client:main" => { cpu: 61000, wait: 9000 }, ... } (ns)
 * ```
 */
export class CpuMeter {
  readonly #list: () => readonly MeteredProcess[];
  #processes: readonly MeteredProcess[] | null = null;
  readonly #times: ThreadTimes = new Map();
  #roundTrips = 0;

  /**
   * @param processes lists the side's processes (its client, its worker, the Redis server),
   *   once, at the first block: its worker is up by then
   */
  constructor(processes: () => readonly MeteredProcess[]) {
    this.#list = processes;
  }

  /**
   * Run a block of round trips and add its threads' times.
   *
   * @param roundTrips round trips the block runs, measured or not
   * @param block runs them
   * @returns what `block` resolved with
   */
  async around<T>(roundTrips: number, block: () => Promise<T>): Promise<T> {
    const processes = this.#processes ??= this.#list();
    const before = snapshot(processes);
    const out = await block();
    for (const [id, [group, t]] of snapshot(processes)) {
      const b = before.get(id)?.[1];
      const sum = this.#times.get(group) ?? { cpu: 0, wait: 0 };
      sum.cpu += t.cpu - (b?.cpu ?? 0);
      sum.wait += t.wait - (b?.wait ?? 0);
      this.#times.set(group, sum);
    }
    this.#roundTrips += roundTrips;
    return out;
  }

  /**
   * Each thread group's times per round trip (ns), groups that used no CPU left out.
   *
   * @returns them, by group
   */
  perRoundTrip(): ThreadTimes {
    const out: ThreadTimes = new Map();
    const n = Math.max(1, this.#roundTrips);
    for (const [group, t] of [...this.#times].sort(([a], [b]) => a.localeCompare(b))) {
      if (t.cpu > 0) out.set(group, { cpu: t.cpu / n, wait: t.wait / n });
    }
    return out;
  }
}

/**
 * One line per thread group and a total: µs on a CPU and µs waiting for one, per round trip.
 *
 * @example
 * ```ts ignore
 * console.log(formatTimes("celeriac", meter.perRoundTrip()));
 * ```
 *
 * @param name the side
 * @param times its {@link CpuMeter.perRoundTrip}
 * @returns the lines
 */
export function formatTimes(name: string, times: ThreadTimes): string {
  const us = (ns: number) => (ns / 1000).toFixed(1).padStart(6);
  let cpu = 0, wait = 0;
  const lines = [...times].map(([group, t]) => {
    cpu += t.cpu;
    wait += t.wait;
    return `    ${group.padEnd(22)} cpu ${us(t.cpu)}  run-queue wait ${us(t.wait)}`;
  });
  return [
    `  ${name}: µs per round trip`,
    ...lines,
    `    ${"total".padEnd(22)} cpu ${us(cpu)}  run-queue wait ${us(wait)}`,
  ].join("\n");
}
