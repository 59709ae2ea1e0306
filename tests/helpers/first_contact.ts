/** An in-process worker on tests/apps/first_contact_app.ts. */

import type { Celery } from "../../mod.ts";
import type { Worker, WorkerOptions } from "../../src/worker/worker.ts";
import { app as tasksApp } from "../apps/first_contact_app.ts";
import { withAppWorker } from "./worker.ts";

const APP_MODULE = new URL("../apps/first_contact_app.ts", import.meta.url).href;

/** Start a worker on a fresh queue, run `fn` with a client app, then stop both. */
export function withFirstContactWorker(
  t: { broker: string; backend: string; visibilityTimeout?: number },
  options: Partial<WorkerOptions>,
  fn: (client: Celery, worker: Worker) => Promise<void>,
): Promise<void> {
  const queue = `fc-${crypto.randomUUID().slice(0, 8)}`;
  return withAppWorker(tasksApp, APP_MODULE, t, options, fn, queue);
}
