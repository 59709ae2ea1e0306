/**
 * The soak workload's app: `bench.noop` as in {@link ./tasks.ts}, and, when
 * `SOAK_MEMORY_FILE` is set, every isolate that imports it (the worker's
 * main thread and each Web Worker) appends its V8 heap figures to that file
 * every `SOAK_SAMPLE_MS` (default 5000) as JSON lines.
 *
 * @module
 */

import { Celery } from "../mod.ts";

/** Queue of the soak tasks. */
export const SOAK_QUEUE = "soak";

/** The soak app. */
export const app = new Celery({ defaultQueue: SOAK_QUEUE });

/** Does nothing and returns a small value. */
export const noop = app.task("bench.noop", () => 1);

/** One heap sample of one isolate. */
export interface HeapSample {
  /** Milliseconds since the epoch. */
  t: number;
  /** `main` or `web-worker-<id>`. */
  isolate: string;
  /** Used V8 heap, bytes. */
  heapUsed: number;
  /** Reserved V8 heap, bytes. */
  heapTotal: number;
  /** Memory outside the V8 heap held by JavaScript objects, bytes. */
  external: number;
}

const file = Deno.env.get("SOAK_MEMORY_FILE");
if (file) {
  const inWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !==
    "undefined";
  const isolate = inWorker ? `web-worker-${crypto.randomUUID().slice(0, 8)}` : "main";
  const every = Number(Deno.env.get("SOAK_SAMPLE_MS") ?? 5000);
  const sample = () => {
    const m = Deno.memoryUsage();
    const line: HeapSample = {
      t: Date.now(),
      isolate,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
    };
    Deno.writeTextFileSync(file, JSON.stringify(line) + "\n", { append: true });
  };
  const timer = setInterval(sample, every);
  Deno.unrefTimer(timer);
}
