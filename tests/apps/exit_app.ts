/**
 * Tasks that end the thread they run on (`Deno.exit()`, `close()`, `node:process`'s `exit`) or leave
 * an error behind them (an unhandled rejection, a throw from a timer): for tests/worker_task_exit_test.ts.
 */

import process from "node:process";
import { Celery } from "../../mod.ts";

export const app = new Celery();

/** Differs in every Web Worker: each imports this module afresh. */
const WID = crypto.randomUUID();

/** Which Web Worker ran it, with its tag. */
export const wid = app.task("x.wid", (tag: unknown = null) => ({ wid: WID, tag }));

/** Blocks its thread for `ms` (tasks sent to the same Web Worker meanwhile do not start), then calls `how`. */
export const exitAfter = app.task("x.exit", { acksLate: true }, (how: string, ms?: number) => {
  const start = Date.now();
  while (Date.now() - start < (ms ?? 0)) {
    // busy: the Web Worker starts nothing else meanwhile
  }
  if (how === "close") (globalThis as unknown as { close(): void }).close();
  else if (how === "process") process.exit(4);
  else Deno.exit(3);
  return "still here";
});

/** Returns its Web Worker from an async handler that awaits only `null`: done within its turn. */
export const widAsync = app.task("x.wid_async", async (tag: unknown = null) => {
  await null;
  return { wid: WID, tag };
});

/** Calls `how` as `x.exit` does, catches what it throws, and returns. */
export const exitCaught = app.task("x.exit_caught", (how: string) => {
  try {
    if (how === "close") (globalThis as unknown as { close(): void }).close();
    else if (how === "process") process.exit(4);
    else Deno.exit(3);
  } catch {
    // The thread ends all the same.
  }
  return "still here";
});

/** Returns at once, and calls `Deno.exit` from a timer `ms` later (in no task's handler). */
export const exitLater = app.task("x.exit_later", (ms: number) => {
  setTimeout(() => Deno.exit(3), ms);
  return "returned";
});

/** Sleeps `ms`, then returns its Web Worker. */
export const nap = app.task("x.nap", async (ms: number) => {
  await new Promise((r) => setTimeout(r, ms));
  return { wid: WID };
});

/** Leaves a rejected promise nobody awaits, and succeeds. */
export const unhandled = app.task("x.unhandled", () => {
  Promise.reject(new Error("background rejection"));
  return 1;
});

/** Throws from a timer after it returned, and succeeds. */
export const throwLater = app.task("x.throw_later", () => {
  setTimeout(() => {
    throw new Error("thrown from a timer");
  }, 5);
  return 1;
});

/** Writes `<path>.started`, then blocks its thread until `path` exists (it starts nothing else meanwhile). */
function blockUntil(path: string): void {
  Deno.writeTextFileSync(`${path}.started`, "");
  for (;;) {
    try {
      Deno.statSync(path);
      return;
    } catch {
      // not yet
    }
  }
}

/**
 * Writes `<path>.started`, blocks its thread until `path` exists (tasks sent
 * to the same Web Worker meanwhile do not start), then calls `Deno.exit`
 * when `exit`.
 */
export const until = app.task("x.until", { acksLate: true }, (path: string, exit: boolean) => {
  blockUntil(path);
  if (exit) Deno.exit(3);
  return "unblocked";
});

/** Opened by `x.unclonable` when it stops blocking its thread. */
const unblocked = Promise.withResolvers<void>();

/**
 * Writes `<path>.started`, blocks its thread until `path` exists, then
 * returns a value with a function in it (or, given `proxy`, a Proxy of
 * plain data, which JSON encodes): an outcome carrying the value (a task
 * with a link whose result is not stored, so not encoded) cannot be posted
 * to the main thread.
 */
export const unclonable = app.task("x.unclonable", (path: string, proxy = false) => {
  blockUntil(path);
  unblocked.resolve();
  return proxy ? new Proxy({ wid: WID }, {}) : { wid: WID, f: () => 1 };
});

/**
 * Once `x.unclonable` returned, and its outcome is done (100 turns of the
 * microtask queue later: before any other message or timer), calls
 * `Deno.exit`.
 */
export const exitAfterUnclonable = app.task("x.exit_after_unclonable", async () => {
  await unblocked.promise;
  for (let i = 0; i < 100; i++) await null;
  Deno.exit(3);
});

/**
 * An errback called in-process (it takes the request): appends the failed
 * task's id and error to `path`.
 */
export const noteErrback = app.task(
  "x.note_errback",
  (request: { id: string }, exc: Error, _traceback: string, path: string) => {
    Deno.writeTextFileSync(path, `${request.id} ${exc.name}: ${exc.message}\n`, { append: true });
  },
);

/** Returns its Web Worker, acknowledged late. */
export const widLate = app.task("x.wid_late", { acksLate: true }, (tag: unknown = null) => ({
  wid: WID,
  tag,
}));

/** Fails at once: its errbacks run. */
export const fails = app.task("x.fails", () => {
  throw new Error("boom");
});

/** An in-process errback that notes its start in `path` and never returns. */
export const hangErrback = app.task(
  "x.hang_errback",
  async (_request: { id: string }, _exc: Error, _traceback: string, path: string) => {
    Deno.writeTextFileSync(path, "started\n", { append: true });
    await new Promise(() => {});
  },
);

/**
 * Late-ack and rejected on worker loss: the first run (no `path` yet)
 * creates `path` and calls `Deno.exit`, so it is requeued; the next returns
 * its Web Worker.
 */
export const exitOnce = app.task(
  "x.exit_once",
  { acksLate: true, rejectOnWorkerLost: true },
  (path: string) => {
    try {
      Deno.statSync(path);
    } catch {
      Deno.writeTextFileSync(path, "");
      Deno.exit(3);
    }
    return { wid: WID, tag: "again" };
  },
);

/** Returns, then its `afterReturn` hook calls `Deno.exit(6)`. */
export const exitAfterReturn = app.task("x.exit_after_return", {
  afterReturn: () => Deno.exit(6),
}, () => "returned");
