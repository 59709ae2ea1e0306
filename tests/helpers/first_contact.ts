/** An in-process worker on tests/apps/first_contact_app.ts. */

import { Celery } from "../../mod.ts";
import { Worker, type WorkerOptions } from "../../src/worker/worker.ts";
import { app as tasksApp } from "../apps/first_contact_app.ts";

const APP_MODULE = new URL("../apps/first_contact_app.ts", import.meta.url).href;

/** Start a worker on a fresh queue, run `fn` with a client app, then stop both. */
export async function withFirstContactWorker(
  t: { broker: string; backend: string; visibilityTimeout?: number },
  options: Partial<WorkerOptions>,
  fn: (client: Celery, worker: Worker) => Promise<void>,
): Promise<void> {
  const queue = `fc-${crypto.randomUUID().slice(0, 8)}`;
  const config = { ...t, defaultQueue: queue };
  tasksApp.configure(config);
  const client = new Celery(config);
  const worker = new Worker({
    app: tasksApp,
    appModule: APP_MODULE,
    queues: [queue],
    concurrency: 1,
    ...options,
  });
  await worker.start();
  try {
    await fn(client, worker);
  } finally {
    await worker.stop();
    await client.close();
    await tasksApp.close();
  }
}
