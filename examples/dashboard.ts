/**
 * The dashboard embedded in a program (the command line's `worker.ts
 * dashboard` does the same): it watches every worker on the app's broker
 * through their events and inspect replies, and serves the UI, the JSON API
 * and Prometheus /metrics.
 *
 *   CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \
 *     deno run --allow-net=127.0.0.1:6379,127.0.0.1:5555 --allow-env examples/dashboard.ts
 *
 * Start workers with `-E` (Celeriac and Python alike) and open
 * http://127.0.0.1:5555. `PORT` changes the port; Ctrl-C stops it.
 */
// deno-lint-ignore-file no-console

import { Dashboard } from "../dashboard.ts";
import { app } from "./tasks.ts";

const dashboard = new Dashboard({
  app,
  port: Number(Deno.env.get("PORT") ?? 5555),
  readOnly: Deno.env.get("READ_ONLY") === "1", // hide revoke, purge, shutdown, …
});
const { url } = await dashboard.start();
console.log(`dashboard on ${url}`);
Deno.addSignalListener("SIGINT", async () => {
  await dashboard.stop();
  await app.close();
  Deno.exit(0);
});
