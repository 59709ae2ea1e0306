/**
 * `--dashboard`: a Celeriac dashboard process (`worker.ts dashboard`)
 * watches the drain, with task events on in the worker (`-E`), so the bench
 * shows what watching costs: compare the drain figures of a run with and
 * without `--dashboard`. The dashboard's peak memory and what it received
 * are recorded with the side's results.
 *
 * @module
 */

import { stopTree } from "./proc.ts";

/** Port of the bench's dashboard. */
export const DASHBOARD_PORT = 5598;

/**
 * What the dashboard saw and held during a side's drain.
 *
 * @example
 * ```ts ignore
 * const figures: DashboardFigures = await watcher.stop();
 * console.log(figures.events, figures.peakRssKiB);
 * ```
 */
export interface DashboardFigures {
  /** Events the dashboard applied. */
  events: number;
  /** Tasks it held at the end (bounded by its --max-tasks, 10,000). */
  tasksHeld: number;
  /**
   * Peak resident memory of the dashboard process: its `VmHWM` when stopped, read once rather
   * than sampled (a read of its `smaps_rollup` every 100 ms is CPU the bench process takes on
   * the CPUs the drain runs on).
   */
  peakRssKiB: number;
}

/**
 * Start a dashboard on the bench's broker and wait until it answers.
 *
 * @example
 * ```ts ignore
 * const watcher = await startDashboard(rootDir, env, live);
 * // ... drain ...
 * const figures = await watcher.stop();
 * ```
 *
 * @param rootDir the repository (where worker.ts is)
 * @param env broker and backend (CELERY_BROKER_URL, CELERY_RESULT_BACKEND)
 * @param live the bench's set of children to stop on Ctrl-C
 * @returns a handle: the dashboard's process id, and stop(), which reports the figures
 */
export async function startDashboard(
  rootDir: string,
  env: Record<string, string>,
  live: Set<Deno.ChildProcess>,
): Promise<{ pid: number; stop(): Promise<DashboardFigures> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "worker.ts",
      "dashboard",
      "--app",
      "bench/tasks.ts",
      "--port",
      String(DASHBOARD_PORT),
      "--read-only",
      "--loglevel",
      "WARNING",
    ],
    cwd: rootDir,
    env,
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  live.add(child);
  child.status.finally(() => live.delete(child));
  const url = `http://127.0.0.1:${DASHBOARD_PORT}`;
  for (let i = 0;; i++) {
    try {
      await (await fetch(`${url}/api/session`)).body?.cancel();
      break;
    } catch (err) {
      if (i > 300) throw new Error(`the bench dashboard did not answer on ${url}: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    pid: child.pid,
    async stop() {
      const overview = await (await fetch(`${url}/api/overview`)).json();
      const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
      await stopTree(child);
      return {
        events: overview.events,
        tasksHeld: overview.tasksHeld,
        peakRssKiB: Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0),
      };
    },
  };
}
