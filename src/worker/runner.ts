/**
 * The script every pool Web Worker runs: import the app module, run the
 * tasks the main thread sends, post outcomes back in batches. It opens no
 * connection: tasks sent from a task are published by the main thread.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import type { Celery } from "../client/app.ts";
import { PUBLISHER } from "../client/publisher.ts";
import type { CeleryOptions } from "../client/config.ts";
import { SoftTimeLimitExceeded } from "../client/worker_errors.ts";
import { loadCodecs } from "../protocol/codecs.ts";
import { loadChordFailure, registerBuiltins } from "./builtins.ts";
import { BatchRunner } from "./batch_runner.ts";
import { ExitCalled, runningSeq } from "./exit_called.ts";
import { guardExit } from "./exit_guard.ts";
import { CpuShares, threadCpuClock } from "./cpu_share.ts";
import type { RunOutcome, RunRequest, RunServices } from "./executor.ts";
import { loadApp } from "./load_app.ts";
import { type FromRunner, isPoolMessage, type ToRunnerPosted } from "./pool_protocol.ts";
import { writeOutcomes } from "./outcome_ring.ts";
import { postOutcomes } from "./outcome_posts.ts";
import { packOutcomes, unpackRun } from "./run_batch.ts";
import { readRuns } from "./run_ring.ts";
import type { Revocation } from "./sandboxes.ts";
import { RingReader, RingWriter } from "./shared_ring.ts";
import { StartTable } from "./start_table.ts";
import { ownThreadId } from "./thread_self.ts";

let app: Promise<Celery> | null = null;
/** The app once loaded: requests then start in the turn they arrive, before an abort posted after them. */
let loaded: Celery | null = null;
const pendingRequests = new Map<number, { resolve(): void; reject(e: Error): void }>();
let requestSeq = 0;
let measureMemory = false;
/** Tasks the main thread has posted to this Web Worker (shared with it), and those received. */
let sent: Int32Array | null = null;
let received = 0;
/** Where a task with time limits is noted when it starts (from `init`). */
let starts: StartTable | null = null;
/** Where plain outcomes go (from `init`), and the posts made so far (the ring's records carry it). */
let ring: RingWriter | null = null;
let posts = 0;
/** Where plain run requests come from (from `init`), and the main thread's posts handled so far. */
let runs: RingReader | null = null;
let handled = 0;

/** Run the requests written to the ring before the main thread's next post. */
function fromRing(): void {
  // Terminated while busy, the thread runs on: the main thread put back what it had not started.
  if (!runs || !app || starts?.halted) return;
  const batch = readRuns(runs, handled);
  if (batch.length === 0) return;
  received += batch.length;
  start(batch);
}

/** Start requests now when the app is loaded, else once it is (the main thread waits for `ready`). */
function start(batch: RunRequest[]): void {
  if (loaded) runner.run(loaded.tasks, batch, loaded.signals);
  else app!.then((a) => runner.run(a.tasks, batch, a.signals));
}

function post(msg: FromRunner): void {
  self.postMessage(msg);
  posts++;
}

/** Post outcomes (throws what `postMessage` throws: see `postOutcomes`). */
function postBatch(outcomes: RunOutcome[]): void {
  post({
    type: "outcomes",
    outcomes: packOutcomes(outcomes),
    memory: measureMemory ? memory() : undefined,
    now: performance.now(),
  });
}

function memory(): number {
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
}

/** Set by `init` (the body limit comes with it). */
const services: RunServices = {
  storeState: (seq, status, meta, final) =>
    request({ type: "store", id: 0, seq, status, meta, final }),
  // Written (or else posted) at once: a task that then blocks its thread is still timed from now.
  // Not once halted: a terminate reads it not started and puts it back.
  started: (seq) => {
    const begun = starts?.begin(seq) ?? "unwritten";
    if (begun === "unwritten") post({ type: "started", seq });
    return begun !== "halted";
  },
  finished: (seq) => starts?.finish(seq),
  // Read in shared memory: a message would wait behind the task holding this thread.
  revoked: (seq) => starts?.revoked(seq) ?? false,
};

// Opened now, with the permissions the Web Worker starts with: a sandbox gives some up once loaded.
const clock = threadCpuClock();
/** This thread's id, for the pool to tell it from others started with it (`thread_self.ts`). */
const tid = ownThreadId();
const runner = new BatchRunner(
  (outcomes) =>
    (!measureMemory && ring && writeOutcomes(ring, outcomes, posts, performance.now())) ||
    postOutcomes(outcomes, postBatch, loaded?.tasks ?? new Map()),
  services,
  () => sent ? Atomics.load(sent, 0) - received : 0,
  clock ? new CpuShares(clock) : undefined,
);

// Before the app module loads: task code that ends this thread says so, and what finished is kept.
// At the call, no task starts any more and the caller's outcome is dropped (it is lost with the
// thread); once the tasks that returned in that turn handed on their outcomes, those held are
// posted, then `dying`. Said even when the outcomes cannot be posted: the main thread then settles
// their tasks with the others this thread had.
guardExit({
  calling: () => runner.halt(runningSeq()),
  dying: (how) => {
    try {
      runner.flush();
    } finally {
      post({ type: "dying", how });
    }
  },
});

/** Post a request the main thread acknowledges (`published` / `stored`) and wait for the answer. */
function request(msg: Extract<FromRunner, { type: "publish" | "store" }>): Promise<void> {
  const id = ++requestSeq;
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  pendingRequests.set(id, { resolve, reject });
  post({ ...msg, id });
  return promise;
}

async function init(
  module: string,
  exportName: string | undefined,
  config: CeleryOptions,
  revoke: Revocation[],
): Promise<Celery> {
  const celery = await loadApp(module, exportName);
  if (revoke.length) {
    // Codecs and the chord failure path are imported on demand, which needs the read access
    // given up below.
    await loadCodecs({ msgpack: true, compression: true });
    await loadChordFailure();
    for (const r of revoke) await Deno.permissions.revoke(r);
  }
  celery.configure(config);
  registerBuiltins(celery);
  celery[PUBLISHER] = (message, target, child, queue) =>
    request({ type: "publish", id: 0, message, target, child, queue });
  // Set before the promise settles: requests deferred until now start ahead of any that follow.
  loaded = celery;
  return celery;
}

self.onmessage = (e: MessageEvent<ToRunnerPosted>) => {
  // Counted as the main thread counts its posts: messages of the pool protocol only.
  if (!isPoolMessage("to", e.data)) return;
  // The ring's requests written before this post go first, those written after it next.
  fromRing();
  handled++;
  try {
    handle(e.data);
  } finally {
    fromRing();
  }
};

function handle(msg: ToRunnerPosted): void {
  switch (msg.type) {
    case "init":
      measureMemory = msg.measureMemory ?? false;
      services.maxDecompressedSize = msg.maxDecompressedSize;
      services.sandboxed = msg.sandboxed;
      sent = msg.sent ?? null;
      starts = msg.starts ? new StartTable(msg.starts) : null;
      ring = msg.outcomes ? new RingWriter(msg.outcomes) : null;
      app = init(msg.module, msg.exportName, msg.config, msg.revoke ?? []);
      if (msg.runs) {
        const reader = runs = new RingReader(msg.runs);
        reader.listen(fromRing, () => false);
      }
      app.then(
        (a) => post({ type: "ready", tasks: [...a.tasks.keys()], now: performance.now(), tid }),
        (err) => {
          // The app module called Deno.exit(): `dying` says so once this turn is over.
          if (err instanceof ExitCalled) return;
          post({ type: "init-error", error: (err as Error).stack ?? String(err) });
        },
      );
      break;
    case "run": {
      // Terminated while busy, the thread runs on to what was queued: the main thread put it back.
      if (starts?.halted) break;
      const batch = unpackRun(msg.batch);
      received += batch.length;
      start(batch);
      break;
    }
    case "abort":
      runner.abort(msg.seqs);
      break;
    case "soft-time-limit":
      runner.abort([msg.seq], new SoftTimeLimitExceeded(msg));
      break;
    case "stored":
    case "published": {
      const p = pendingRequests.get(msg.id);
      pendingRequests.delete(msg.id);
      if (msg.error) p?.reject(new Error(msg.error));
      else p?.resolve();
      break;
    }
  }
}
