/**
 * Counting what a drain costs the kernel, per task: system calls (all, and
 * the ones a Redis drain makes: `write`/`read` (sockets and eventfds alike),
 * `sendto`/`recvfrom` (sockets only), event-loop waits, futexes), wake-ups
 * of other threads (`sched:sched_waking`, which fires in the thread that
 * wakes another), context switches and page faults, for each thread kind
 * of the worker and for the Redis server, with Linux `perf stat`
 * (tracepoints: root, or `perf_event_paranoid` ≤ -1); and the Redis
 * commands run per task, from `INFO commandstats` (scripts' inner commands
 * included). Both count the whole server: other clients of the same Redis
 * add to them.
 *
 * @module
 */

/** Events counted, as `perf stat -e` names them, with the label they are printed under. */
export const SYSCALL_EVENTS: readonly [string, string][] = [
  ["raw_syscalls:sys_enter", "syscalls"],
  ["syscalls:sys_enter_write", "write"],
  ["syscalls:sys_enter_writev", "writev"],
  ["syscalls:sys_enter_sendto", "sendto"],
  ["syscalls:sys_enter_read", "read"],
  ["syscalls:sys_enter_recvfrom", "recvfrom"],
  ["syscalls:sys_enter_epoll_wait", "epoll_wait"],
  ["syscalls:sys_enter_futex", "futex"],
  ["sched:sched_waking", "wake-ups"],
  ["context-switches", "context switches"],
  ["page-faults", "page faults"],
];

/** Counts by thread kind (see {@link threadKind}), then by event label. */
export type KernelCounts = Map<string, Map<string, number>>;

/**
 * The kind of a thread of a Deno worker or of the Redis server, from its
 * name as `perf stat --per-thread` prints it (`name-tid`).
 *
 * @example
 * ```ts
 * import { threadKind } from "./syscalls.ts";
 * threadKind("worker-1-4242", 4000); // "web workers"
 * threadKind("deno-4000", 4000); // "main"
 * ```
 *
 * @param thread `name-tid`
 * @param pid the process id (the main thread's tid)
 * @returns main, web workers, V8 helpers, tokio or other
 */
export function threadKind(thread: string, pid: number): string {
  const at = thread.lastIndexOf("-");
  const name = thread.slice(0, at);
  if (thread.slice(at + 1) === String(pid)) return "main";
  if (/^worker-\d+$/.test(name)) return "web workers";
  if (name.startsWith("V8 ")) return "V8 helpers";
  if (name.startsWith("tokio")) return "tokio";
  return "other";
}

/**
 * Parse `perf stat --per-thread -x,` output into counts by thread kind.
 *
 * @example
 * ```ts
 * import { parsePerfStat } from "./syscalls.ts";
 * const csv = "deno-10,120,,raw_syscalls:sys_enter,1,100.00,,\nworker-1-12,<not counted>,,page-faults,0,100.00,,\n";
 * parsePerfStat(csv, 10).get("main")?.get("syscalls"); // 120
 * ```
 *
 * @param csv the output
 * @param pid the process counted
 * @returns counts by thread kind and event label
 */
export function parsePerfStat(csv: string, pid: number): KernelCounts {
  const labels = new Map(SYSCALL_EVENTS);
  const out: KernelCounts = new Map();
  for (const line of csv.split("\n")) {
    const [thread, value, , event] = line.split(",");
    const label = labels.get(event);
    const n = Number(value);
    if (label === undefined || !Number.isFinite(n)) continue;
    const kind = threadKind(thread, pid);
    let m = out.get(kind);
    if (!m) out.set(kind, m = new Map());
    m.set(label, (m.get(label) ?? 0) + n);
  }
  return out;
}

/**
 * Start counting the events of {@link SYSCALL_EVENTS} for each process.
 *
 * @example
 * ```ts ignore
 * const stop = await countKernelEvents({ worker: child.pid, "redis-server": redisPid });
 * // ... the drain ...
 * const counts = await stop(); // Map { "worker" => Map { "main" => Map { "syscalls" => 8123, ... } } }
 * ```
 *
 * @param pids processes by label
 * @returns a function that stops counting and gives the counts by process label
 */
export async function countKernelEvents(
  pids: Record<string, number>,
): Promise<() => Promise<Map<string, KernelCounts>>> {
  const events = SYSCALL_EVENTS.map(([e]) => e).join(",");
  const runs = Object.entries(pids).map(([label, pid]) => {
    const file = Deno.makeTempFileSync({ prefix: "celeriac-perf-stat-", suffix: ".csv" });
    const child = new Deno.Command("perf", {
      args: ["stat", "--per-thread", "-x,", "-e", events, "-p", String(pid), "-o", file],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    return { label, pid, file, child };
  });
  // perf attaches to every thread before it counts anything.
  await new Promise((r) => setTimeout(r, 300));
  return async () => {
    for (const r of runs) r.child.kill("SIGINT");
    const done = await Promise.all(runs.map(async (r) => {
      const { stderr } = await r.child.output();
      const csv = Deno.readTextFileSync(r.file);
      Deno.removeSync(r.file);
      return { ...r, csv, stderr: new TextDecoder().decode(stderr).trim() };
    }));
    const out = new Map<string, KernelCounts>();
    for (const r of done) {
      if (!r.csv.includes(",")) throw new Error(`perf stat counted nothing: ${r.stderr}`);
      out.set(r.label, parsePerfStat(r.csv, r.pid));
    }
    return out;
  };
}

/**
 * Lines giving each count per task: for each process, its total over all
 * threads, then each thread kind with syscalls.
 *
 * @example
 * ```ts ignore
 * for (const line of kernelLines(await stop(), 20_000)) console.log(line);
 * ```
 *
 * @param counts what {@link countKernelEvents} gave
 * @param tasks tasks run meanwhile
 * @returns printable lines
 */
export function kernelLines(counts: Map<string, KernelCounts>, tasks: number): string[] {
  const line = (m: Map<string, number>) =>
    SYSCALL_EVENTS.map(([, label]) => `${label} ${((m.get(label) ?? 0) / tasks).toFixed(3)}`)
      .join(", ");
  const lines: string[] = [];
  for (const [proc, kinds] of counts) {
    const total = new Map<string, number>();
    for (const m of kinds.values()) for (const [k, v] of m) total.set(k, (total.get(k) ?? 0) + v);
    lines.push(`  ${proc}: ${line(total)}`);
    if (kinds.size < 2) continue;
    for (const [kind, m] of [...kinds].sort((a, b) => a[0].localeCompare(b[0]))) {
      if (m.get("syscalls")) lines.push(`    ${kind}: ${line(m)}`);
    }
  }
  return lines;
}

/**
 * Calls so far of each command of a Redis server (`INFO commandstats`).
 *
 * @example
 * ```ts ignore
 * const before = commandCalls(await client.info("commandstats"));
 * ```
 *
 * @param info the `INFO commandstats` text
 * @returns calls by command name
 */
export function commandCalls(info: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1], Number(m[2]));
  return out;
}

/**
 * The commands run per task between two {@link commandCalls} readings,
 * largest first, those above 0.001 per task.
 *
 * @example
 * ```ts
 * import { commandsPerTask } from "./syscalls.ts";
 * commandsPerTask(new Map([["get", 5]]), new Map([["get", 105]]), 100); // "get 1.000"
 * ```
 *
 * @param before the first reading
 * @param after the second
 * @param tasks tasks run in between
 * @returns `name rate, ...`
 */
export function commandsPerTask(
  before: Map<string, number>,
  after: Map<string, number>,
  tasks: number,
): string {
  return [...after].map(([k, v]) => [k, (v - (before.get(k) ?? 0)) / tasks] as const)
    .filter(([, r]) => r >= 0.001).sort((a, b) => b[1] - a[1])
    .map(([k, r]) => `${k} ${r.toFixed(3)}`).join(", ");
}
