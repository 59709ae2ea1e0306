/**
 * The script every pool Web Worker runs: import the app module, run the
 * tasks the main thread sends, post outcomes back in batches. It opens no
 * connection: tasks sent from a task are published by the main thread.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { type Celery, PUBLISHER } from "../client/app.ts";
import type { CeleryOptions } from "../client/config.ts";
import { type RunOutcome, type RunRequest, runTask } from "./executor.ts";
import { loadApp } from "./load_app.ts";
import type { FromRunner, ToRunner } from "./pool_protocol.ts";

let app: Promise<Celery> | null = null;
const running = new Map<number, AbortController>();
const pendingPublishes = new Map<number, { resolve(): void; reject(e: Error): void }>();
let publishSeq = 0;
let outbox: RunOutcome[] = [];
let flushScheduled = false;

function post(msg: FromRunner): void {
  self.postMessage(msg);
}

function flush(): void {
  flushScheduled = false;
  const outcomes = outbox;
  outbox = [];
  post({ type: "outcomes", outcomes });
}

function finished(outcome: RunOutcome): void {
  running.delete(outcome.seq);
  outbox.push(outcome);
  if (!flushScheduled) {
    // Outcomes of tasks that finish in the same turn (every synchronous
    // handler of a batch) are already queued ahead of this microtask.
    flushScheduled = true;
    queueMicrotask(flush);
  }
}

async function init(
  module: string,
  exportName: string | undefined,
  config: CeleryOptions,
): Promise<Celery> {
  const loaded = await loadApp(module, exportName);
  loaded.configure(config);
  loaded[PUBLISHER] = (message, target) => {
    const id = ++publishSeq;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    pendingPublishes.set(id, { resolve, reject });
    post({ type: "publish", id, message, target });
    return promise;
  };
  return loaded;
}

function run(tasks: Celery["tasks"], batch: RunRequest[]): void {
  for (const req of batch) {
    const ctl = new AbortController();
    running.set(req.seq, ctl);
    runTask(tasks, req, ctl.signal).then(finished);
  }
}

self.onmessage = (e: MessageEvent<ToRunner>) => {
  const msg = e.data;
  switch (msg.type) {
    case "init":
      app = init(msg.module, msg.exportName, msg.config);
      app.then(
        (a) => post({ type: "ready", tasks: [...a.tasks.keys()] }),
        (err) => post({ type: "init-error", error: (err as Error).stack ?? String(err) }),
      );
      break;
    case "run":
      app!.then((a) => run(a.tasks, msg.batch));
      break;
    case "abort":
      for (const seq of msg.seqs) running.get(seq)?.abort();
      break;
    case "published": {
      const p = pendingPublishes.get(msg.id);
      pendingPublishes.delete(msg.id);
      if (msg.error) p?.reject(new Error(msg.error));
      else p?.resolve();
      break;
    }
  }
};
