// deno-lint-ignore-file no-console
/**
 * What starting and stopping a worker costs: CPU from spawn to exit, time to
 * its "ready" line, and time from SIGTERM (warm shutdown, nothing running) to
 * exit, for `deno run -A worker.ts` in one or more checkouts, run in
 * alternation (A, B, A, B, ...) and summarised by medians.
 *
 * The CPU is the worker's whole process (every thread, both process images
 * when it starts over with its V8 flags), read by bash's `times` after it
 * waited for the worker.
 *
 * @example Two checkouts on Redis, 8 alternated rounds
 * ```sh
 * deno run -A bench/spawn_cost.ts --runs 8 --broker redis://127.0.0.1:6379/0 -Q spawn /work/main .
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

/** One start and stop of a worker. */
export interface SpawnSample {
  /** CPU seconds of the worker process, spawn to exit (user + system). */
  cpu: number;
  /** Seconds from spawn to the "ready" line. */
  ready: number;
  /** Seconds from SIGTERM to exit. */
  stop: number;
}

/**
 * Seconds of `times`'s second line (the children's user and system time).
 *
 * @example
 * ```ts ignore
 * childCpu("0m0.001s 0m0.002s\n0m1.000s 0m0.250s\n"); // 1.25
 * ```
 */
export function childCpu(times: string): number {
  const line = times.trim().split("\n").at(-1) ?? "";
  return line.split(/\s+/).reduce((sum, t) => {
    const m = /^(\d+)m([\d.]+)s$/.exec(t);
    return m ? sum + Number(m[1]) * 60 + Number(m[2]) : sum;
  }, 0);
}

/**
 * Start a worker in `cwd`, wait for its ready line, send SIGTERM, wait for it.
 *
 * @example
 * ```ts ignore
 * const s = await spawnOnce(".", "redis://127.0.0.1:6379/0", 2, "./tests/interop/tasks.ts", "q");
 * ```
 *
 * @param cwd the checkout to run `worker.ts` in
 * @param broker the broker URL (`-b`)
 * @param concurrency Web Workers (`-c`)
 * @param app the app module (`--app`)
 * @param queues queues to consume (`-Q`); default the app's
 * @returns the sample
 */
export async function spawnOnce(
  cwd: string,
  broker: string,
  concurrency: number,
  app: string,
  queues?: string,
): Promise<SpawnSample> {
  const worker = [
    "deno",
    "run",
    "-A",
    "worker.ts",
    "--app",
    app,
    "-b",
    broker,
    "-c",
    `${concurrency}`,
    ...(queues ? ["-Q", queues] : []),
  ]
    .map((a) => `'${a}'`).join(" ");
  // bash runs the worker in the background, says its pid, waits, then says the children's CPU.
  const script = `${worker} 2>&1 & echo "PID $!"; wait $!; echo TIMES; times`;
  const child = new Deno.Command("bash", { args: ["-c", script], cwd, stdout: "piped" }).spawn();
  const t0 = performance.now();
  let ready = NaN, stop = NaN, pid = 0, tail = "", seenTimes = false, termAt = 0;
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    tail += decoder.decode(chunk, { stream: true });
    let nl;
    while (!seenTimes && (nl = tail.indexOf("\n")) >= 0) {
      const line = tail.slice(0, nl);
      tail = tail.slice(nl + 1);
      if (pid === 0 && line.startsWith("PID ")) pid = Number(line.slice(4));
      else if (Number.isNaN(ready) && line.includes(" ready")) {
        ready = (performance.now() - t0) / 1000;
        termAt = performance.now();
        Deno.kill(pid, "SIGTERM");
      } else if (line === "TIMES") {
        stop = (performance.now() - termAt) / 1000;
        seenTimes = true;
      }
    }
  }
  await child.status;
  return { cpu: childCpu(tail), ready, stop };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      runs: { type: "string", default: "8" },
      broker: { type: "string", default: "redis://127.0.0.1:6379/0" },
      concurrency: { type: "string", short: "c", default: "2" },
      app: { type: "string", default: "./tests/interop/tasks.ts" },
      queues: { type: "string", short: "Q" },
    },
  });
  const dirs = positionals.length ? positionals : ["."];
  const samples = new Map<string, SpawnSample[]>(dirs.map((d) => [d, []]));
  for (let i = 0; i < Number(values.runs); i++) {
    for (const dir of dirs) {
      const s = await spawnOnce(
        dir,
        values.broker!,
        Number(values.concurrency),
        values.app!,
        values.queues,
      );
      samples.get(dir)!.push(s);
      console.log(
        `${dir} cpu=${s.cpu.toFixed(2)}s ready=${s.ready.toFixed(2)}s stop=${s.stop.toFixed(2)}s`,
      );
    }
  }
  for (const [dir, ss] of samples) {
    const m = (f: (s: SpawnSample) => number) => median(ss.map(f)).toFixed(2);
    console.log(
      `median ${dir} (${ss.length} runs, ${values.broker}): cpu ${m((s) => s.cpu)}s, ` +
        `ready ${m((s) => s.ready)}s, SIGTERM to exit ${m((s) => s.stop)}s`,
    );
  }
}
