/**
 * Tasks with hooks, and signal listeners, for the hooks tests: each hook
 * appends one JSON line to the log file, saying where it ran (a Web Worker
 * or the main thread). The file is the `log` parameter of this module's URL
 * (the Web Workers import it with one), else what {@link logTo} set: not an
 * environment variable, which every test file running in parallel in the
 * same process would share.
 */

import { Celery, type TaskRunInfo } from "../../mod.ts";

export const app = new Celery();

let logPath = new URL(import.meta.url).searchParams.get("log") ?? undefined;

/** Where the hooks of this module instance write; `undefined`: nowhere. */
export function logTo(path: string | undefined): void {
  logPath = path;
}

function record(event: string, info: Partial<TaskRunInfo> & { extra?: unknown } = {}): void {
  const path = logPath;
  if (!path) return;
  const line = JSON.stringify({
    event,
    name: info.name,
    id: info.id,
    retries: info.retries,
    extra: info.extra,
    inWebWorker: "WorkerGlobalScope" in globalThis,
  });
  Deno.writeTextFileSync(path, line + "\n", { append: true });
}

app.on("taskPrerun", (t) => record("taskPrerun", t));
app.on("taskPostrun", (t) => record("taskPostrun", { ...t, extra: t.state }));
app.on(
  "taskFailure",
  (t) => record("taskFailure", { ...t, extra: `${(t.error as Error).message}|${!!t.traceback}` }),
);
app.on("workerReady", ({ hostname }) => record("workerReady", { extra: hostname }));
app.on("workerShutdown", async ({ hostname }) => {
  await new Promise((r) => setTimeout(r, 10)); // async listeners are awaited
  record("workerShutdown", { extra: hostname });
});

const hooks = {
  onSuccess: (value: unknown, t: TaskRunInfo) => record("onSuccess", { ...t, extra: value }),
  onFailure: (error: unknown, t: TaskRunInfo & { traceback: string | null }) =>
    record("onFailure", { ...t, extra: `${(error as Error).message}|${!!t.traceback}` }),
  onRetry: (error: unknown, t: TaskRunInfo) =>
    record("onRetry", { ...t, extra: (error as Error | undefined)?.message }),
  afterReturn: (state: string, _value: unknown, t: TaskRunInfo) =>
    record("afterReturn", { ...t, extra: state }),
};

export const ok = app.task("h.ok", hooks, (x: number) => x * 2);
export const fail = app.task("h.fail", hooks, (why: string): never => {
  throw new Error(why);
});
export const retryOnce = app.task("h.retry_once", { ...hooks, bind: true }, (ctx) => {
  if (ctx.retries === 0) throw ctx.retry({ countdown: 0, exc: new Error("transient") });
  return "second try";
});
export const badHook = app.task("h.bad_hook", {
  onSuccess: () => {
    throw new Error("hook broke");
  },
}, () => "fine");
