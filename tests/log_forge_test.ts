// deno-lint-ignore-file no-console
/**
 * Log forging (review 1, LOW 4): the worker's text log keeps line breaks
 * (stacks read as Celery's tracebacks), and a task name taken from the
 * broker, "t.nope\n2026-… [INF] … succeeded … FORGED", wrote a whole fake
 * line. Values from messages (names, ids, queues, reasons) are now written
 * with their control characters escaped; a traceback keeps its lines. The
 * invisible format characters Python's repr escapes (bidi overrides and
 * isolates, zero-width characters, U+2028/U+2029, U+FEFF: "Trojan Source")
 * are escaped too, so a name cannot reorder what an operator reads.
 */

import assert from "node:assert/strict";
import { configure, reset } from "@logtape/logtape";
import { logSink } from "../src/cli/log_output.ts";
import { logLifecycle } from "../src/worker/lifecycle_log.ts";
import { brokenStores } from "../src/worker/chords.ts";
import { failChordBody } from "../src/worker/chord_failure.ts";
import { openKvBackend } from "../src/backend/kv.ts";
import { chordError } from "../src/protocol/signature.ts";
import { Celery } from "../mod.ts";
import { oneLine } from "../src/worker/log_values.ts";
import { warnSkipped } from "../src/cli/events.ts";
import { logSoftTimeLimit } from "../src/worker/time_limits.ts";

const FORGED =
  "2026-12-07 06:00:00.000 +00:00 [INF] celeriac·worker: Task t.add[0000] succeeded in 0.001s: FORGED";

/** Run `fn` with the worker's text log sink, and return the lines it printed. */
async function printedLines(
  fn: (log: ReturnType<typeof logLifecycle>) => unknown,
): Promise<string[]> {
  const saved = { ...console };
  let out = "";
  for (const m of ["log", "info", "warn", "error", "debug", "trace"] as const) {
    console[m] = (...args: unknown[]) => out += args.join(" ") + "\n";
  }
  try {
    await configure({
      reset: true,
      sinks: { out: await logSink() },
      loggers: [
        { category: ["celeriac"], lowestLevel: "debug", sinks: ["out"] },
        { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["out"] },
      ],
    });
    await fn(logLifecycle(() => ["t.add"]));
  } finally {
    await reset();
    Object.assign(console, saved);
  }
  return out.split("\n").filter((l) => l !== "");
}

Deno.test("log forging: a task name, id and queue with line breaks stay on the parked line", async () => {
  const lines = await printedLines((log) =>
    log({
      type: "rejected",
      delivery: { queue: "q\r\nx" } as never,
      req: null,
      taskId: "id\n1",
      taskName: `t.nope\n${FORGED}`,
      reason: "not registered\x1b[31m",
      kind: "unregistered",
      atIntake: true,
    })
  );
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.ok(!lines.some((l) => l.startsWith(FORGED.slice(0, 20))));
  assert.match(
    lines[0],
    /Parked task t\.nope\\n2026-12-07 .*FORGED\[id\\n1\]: not registered\\x1b\[31m/,
  );
});

Deno.test("log forging: a failure's traceback keeps its lines; a forged name does not add one", async () => {
  const traceback = "Error: boom\n    at run (tasks.ts:1:1)\n    at main (tasks.ts:2:1)";
  const lines = await printedLines((log) =>
    log({
      type: "failed",
      seq: 1,
      req: { task: `t.add\n${FORGED}`, id: "i-1" } as never,
      cause: "raised",
      exc: { exc_type: "Error", exc_message: ["boom"], exc_module: "builtins" },
      message: "boom",
      outcome: { traceback } as never,
    })
  );
  assert.equal(lines.length, 4, lines.join("\n"));
  assert.match(
    lines[0],
    /Task t\.add\\n2026-12-07 .*FORGED\[i-1\] raised unexpected: Error\('boom'\)$/,
  );
  assert.deepEqual(lines.slice(1), traceback.split("\n"));
});

Deno.test("log forging: a follow-up not sent is logged on one line, whatever its name", async () => {
  const lines = await printedLines(() =>
    brokenStores({
      publishes: [],
      children: [],
      broken: [{
        taskId: null,
        task: `t.next\n${FORGED}`,
        exc: { exc_type: "ValueError", exc_message: ["bad link"], exc_module: "builtins" },
      }],
    }, "p\r\n1")
  );
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(
    lines[0],
    /Task p\\r\\n1: follow-up t\.next\\n2026-12-07 .*FORGED not sent: bad link$/,
  );
});

Deno.test("log forging: a task lost with its Web Worker is logged on one line, whatever its name", async () => {
  const lines = await printedLines((log) =>
    log({
      type: "failed",
      seq: 1,
      req: { task: `t.add\n${FORGED}`, id: "i\r2" } as never,
      cause: "worker-lost",
      exc: { exc_type: "WorkerLostError", exc_message: ["gone"], exc_module: "billiard" },
      message: "task code called Deno.exit(3)",
    })
  );
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(
    lines[0],
    /Task t\.add\\n2026-12-07 .*FORGED\[i\\r2\] failed with WorkerLostError: its Web Worker died/,
  );
});

Deno.test("log forging: a chord body whose errback threw is logged on one line, whatever its name", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const backend = await openKvBackend("kv://:memory:");
  const thrower = app.task(
    "eb.raiser",
    (_request: unknown, _exc: unknown, _traceback: unknown) => {
      throw new Error("errback boom");
    },
  );
  const body = {
    task: `t.body\n${FORGED}`,
    args: [],
    kwargs: {},
    options: {
      task_id: "b\n1",
      link_error: [{ task: thrower.name, args: [], kwargs: {}, options: {} }],
    },
  };
  const parent = { id: "p", rootId: "p", origin: "w", defaultQueue: "celery" };
  try {
    const lines = await printedLines(async () => {
      const sent = await failChordBody(
        body as never,
        chordError("m", { exc_type: "E", exc_message: ["x"], exc_module: "builtins" }),
        { backend, tasks: new Map([[thrower.name, thrower as never]]) },
        parent,
      );
      assert.deepEqual(sent, []);
    });
    const errback = lines.filter((l) => l.includes("its errback threw"));
    assert.equal(errback.length, 1, lines.join("\n"));
    assert.ok(!lines.some((l) => l.startsWith(FORGED.slice(0, 20))), lines.join("\n"));
    assert.match(
      errback[0],
      /Chord body t\.body\\n2026-12-07 .*FORGED\[b\\n1\]: its errback threw/,
    );
  } finally {
    await backend.close();
    await app.close();
  }
});

// Each as Python 3.11's repr() writes it (checked with /usr/bin/python3: repr(c)[1:-1]).
const PYTHON_REPR: [string, string][] = [
  ["\u202a\u202b\u202c\u202d\u202e", "\\u202a\\u202b\\u202c\\u202d\\u202e"],
  ["\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"],
  ["\u200b\u200c\u200d\u200e\u200f", "\\u200b\\u200c\\u200d\\u200e\\u200f"],
  ["\u2028\u2029\ufeff", "\\u2028\\u2029\\ufeff"],
  ["\xa0\xad\x85\u3000", "\\xa0\\xad\\x85\\u3000"],
  ["\u{e0001}\u{f0000}\ue000\ud800\u0378", "\\U000e0001\\U000f0000\\ue000\\ud800\\u0378"],
  ["tâche.ajouter 任务 😀 ünï", "tâche.ajouter 任务 😀 ünï"],
];

Deno.test("log forging: format characters are escaped as Python's repr escapes them", () => {
  for (const [raw, shown] of PYTHON_REPR) assert.equal(oneLine(raw), shown);
});

Deno.test("log forging: a bidi override in a task name is escaped in the log line", async () => {
  const lines = await printedLines((log) =>
    log({
      type: "failed",
      seq: 1,
      req: { task: "t.\u202edda\u2066x\u2069", id: "i\u200b3" } as never,
      cause: "worker-lost",
      exc: { exc_type: "WorkerLostError", exc_message: ["gone"], exc_module: "billiard" },
      message: "task code called Deno.exit(3)",
    })
  );
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.doesNotMatch(lines[0], /[\u200b\u202e\u2066\u2069]/);
  assert.ok(lines[0].includes("Task t.\\u202edda\\u2066x\\u2069[i\\u200b3]"), lines[0]);
});

Deno.test("log forging: the events command's skipped-event warning stays on one line", async () => {
  const lines = await printedLines(() =>
    warnSkipped(
      { type: "worker-heartbeat\u202e", hostname: `w@h\n${FORGED}\u2067` } as never,
      new Error("bad\r\nfield"),
    )
  );
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.ok(!lines.some((l) => l.startsWith(FORGED.slice(0, 20))), lines.join("\n"));
  assert.match(
    lines[0],
    /Skipped an event that could not be shown \(worker-heartbeat\\u202e from w@h\\n2026-12-07 .*FORGED\\u2067\): bad\\r\\nfield$/,
  );
});

Deno.test("log forging: a soft time limit's warning keeps the task's id on its line", async () => {
  const lines = await printedLines(() =>
    logSoftTimeLimit(1, { task: "t.slow", id: `i\n${FORGED}\u202e` })
  );
  assert.equal(lines.length, 1, lines.join("\n"));
  assert.match(lines[0], /exceeded for t\.slow\[i\\n2026-12-07 .*FORGED\\u202e\]: its ctx/);
});
