/**
 * The app of start_ack_test.ts, on the broker SA_BROKER: `sa.block` holds
 * its Web Worker's thread (synchronous code) until the file `gate` exists in
 * SA_DIR, having written `blocking` there; `sa.mark` appends its argument to
 * `runs` there.
 */

import { Celery } from "../../mod.ts";

const env = (name: string): string => {
  const v = Deno.env.get(name);
  if (v === undefined) throw new Error(`${name} must be set`);
  return v;
};
const dir = env("SA_DIR");

export const app = new Celery({ broker: env("SA_BROKER"), backend: null });

const pause = new Int32Array(new SharedArrayBuffer(4));

app.task("sa.block", () => {
  Deno.writeTextFileSync(`${dir}/blocking`, "");
  for (;;) {
    try {
      Deno.statSync(`${dir}/gate`);
      return 1;
    } catch {
      Atomics.wait(pause, 0, 0, 10); // the thread stays held: no other task starts meanwhile
    }
  }
});

app.task("sa.mark", (i: number) => {
  Deno.writeTextFileSync(`${dir}/runs`, `${i}\n`, { append: true });
  return i;
});
