// deno-lint-ignore-file no-console
/**
 * The README's "From code" worker, as written there, with the broker from
 * FROM_CODE_BROKER and a line on stdout once it started: it must exit after
 * SIGTERM, with `await worker.finished` and `await app.close()`.
 */

import { Worker } from "../../worker.ts";
import { app } from "./from_code_app.ts";

const worker = new Worker({
  app,
  appModule: new URL("./from_code_app.ts", import.meta.url).href,
  concurrency: 2,
});
await worker.start();
// Listening before "started" is printed: the test sends SIGTERM as soon as it reads it.
Deno.addSignalListener("SIGTERM", () => worker.stop());
console.log("started");
await worker.finished;
await app.close();
