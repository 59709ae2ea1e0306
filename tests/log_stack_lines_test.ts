/**
 * A stack trace logged by the worker (a Web Worker that died, a throw left
 * by task code) reads as Celery's tracebacks do: in the text format its
 * lines are lines, not one line with literal `\n`; a JSON record stays one
 * valid line.
 */

import assert from "node:assert/strict";
import type { LogRecord, Sink } from "@logtape/logtape";
import { logSink, type LogSinkOptions } from "../src/cli/log_output.ts";

/** Write `record` through the sink `options` make, to a file; return the file's text. */
async function written(options: LogSinkOptions, record: LogRecord): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-stack-" });
  try {
    const logfile = `${dir}/worker.log`;
    const sink = await logSink({ ...options, logfile }) as Sink & AsyncDisposable;
    sink(record);
    await sink[Symbol.asyncDispose]();
    return await Deno.readTextFile(logfile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function stackRecord(): { record: LogRecord; stack: string } {
  const err = new TypeError("kaboom");
  const stack = err.stack!;
  const record: LogRecord = {
    category: ["celeriac", "worker"],
    level: "error",
    timestamp: 0,
    rawMessage: "Task code left an {kind}: {error}; the worker goes on",
    message: ["Task code left an ", "uncaught error", ": ", stack, "; the worker goes on"],
    properties: { kind: "uncaught error", error: stack },
  };
  return { record, stack };
}

Deno.test("log stack lines: the text format shows a stack trace on its own lines", async () => {
  const { record, stack } = stackRecord();
  assert.ok(stack.includes("\n    at "), "a stack of several lines");
  const text = await written({ format: "text" }, record);
  assert.ok(!text.includes("\\n"), `no literal \\n: ${text}`);
  assert.ok(text.includes(stack), `the stack as it is: ${text}`);
  assert.match(
    text,
    /\[ERR\] celeriac·worker: Task code left an uncaught error: TypeError: kaboom\n {4}at /,
  );
});

Deno.test("log stack lines: control characters in a logged value stay escaped", async () => {
  const { record } = stackRecord();
  const text = await written({ format: "text" }, {
    ...record,
    message: ["Task code left an ", "uncaught error", ": ", "a\x1b[2Jb", "; the worker goes on"],
  });
  assert.ok(!text.includes("\x1b"), `no raw escape: ${JSON.stringify(text)}`);
});

Deno.test("log stack lines: a JSON record with a stack is one valid line", async () => {
  const { record, stack } = stackRecord();
  const lines = (await written({ format: "json", fields: { hostname: "h@x" } }, record))
    .trimEnd().split("\n");
  assert.equal(lines.length, 1);
  const parsed = JSON.parse(lines[0]);
  assert.equal(parsed.error, stack);
  assert.ok(parsed.message.includes(stack));
});
