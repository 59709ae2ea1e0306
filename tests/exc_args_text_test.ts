// deno-lint-ignore-file no-console
/**
 * Exception arguments as Celery 5.2.6 stores them (review 1, MEDIUM 2 and
 * LOW 5): `raise ValueError({"field": "email", "code": 3})` printed
 * "FAILURE: ValueError: [object Object]" in `result` / `call --wait`, a
 * `KeyError({"toString": 1})` made them exit 70 ("Cannot convert object to
 * primitive value"), and an exc_message nested 5,000 deep made get()
 * reject with a RangeError instead of a TaskError. Arguments now show as
 * Python's `str()` of the exception would, and a TaskError is always made.
 */

import assert from "node:assert/strict";
import { TaskError } from "../mod.ts";
import { printOutcome, TASK_FAILED_EXIT } from "../src/cli/task_outcome.ts";
import type { AsyncResult } from "../src/client/async_result.ts";
import { taskErrorFromMeta } from "../src/client/errors.ts";
import { decodeResultMeta } from "../src/protocol/result_meta.ts";

/** A FAILURE meta exactly as Celery 5.2.6's redis backend stores it. */
function pyMeta(id: string, excType: string, excMessage: string): string {
  return `{"status": "FAILURE", "result": {"exc_type": "${excType}", "exc_message": ${excMessage}, ` +
    `"exc_module": "builtins"}, "traceback": null, "children": null, ` +
    `"date_done": "2026-12-07T06:06:49.008732", "task_id": "${id}"}`;
}

/** What printOutcome prints (stdout and stderr together) and its exit code. */
async function printed(meta: string, json = false): Promise<{ code: number; out: string }> {
  const decoded = decodeResultMeta(meta, "x");
  const result = { id: decoded.task_id, get: () => Promise.reject(taskErrorFromMeta(decoded)) };
  const log = console.log;
  const error = console.error;
  let out = "";
  console.log = console.error = (...args: unknown[]) => out += args.join(" ") + "\n";
  try {
    return {
      code: await printOutcome(result as unknown as AsyncResult, { timeout: 1, json }),
      out,
    };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("exc args: result prints a dict argument as Python's repr, as TaskError's message does", async () => {
  const meta = pyMeta("py-dict", "ValueError", '[{"field": "email", "code": 3}]');
  assert.deepEqual(await printed(meta), {
    code: TASK_FAILED_EXIT,
    out: "FAILURE: ValueError: {'field': 'email', 'code': 3}\n",
  });
  assert.equal(
    taskErrorFromMeta(decodeResultMeta(meta, "x")).message,
    "Task py-dict failed: ValueError: {'field': 'email', 'code': 3}",
  );
});

Deno.test("exc args: a dict argument with a toString key is printed, not a crash", async () => {
  const meta = pyMeta("py-tostring", "KeyError", '[{"toString": 1}, null, true, "plain"]');
  assert.deepEqual(await printed(meta), {
    code: TASK_FAILED_EXIT,
    out: "FAILURE: KeyError: {'toString': 1}, None, True, plain\n",
  });
  const json = await printed(meta, true);
  assert.equal(json.code, TASK_FAILED_EXIT);
  assert.deepEqual(JSON.parse(json.out).result.exc_message, [{ toString: 1 }, null, true, "plain"]);
});

for (const depth of [5_000, 20_000]) {
  Deno.test(`exc args: an exc_message nested ${depth} deep is a TaskError with a cut description`, async () => {
    const meta = pyMeta("deep", "X", "[".repeat(depth) + "]".repeat(depth));
    let err: unknown;
    try {
      err = taskErrorFromMeta(decodeResultMeta(meta, "x"));
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof TaskError, String(err));
    assert.match(err.message, /^Task deep failed: X: \[{100,}\.\.\.$/);
    assert.ok(err.message.length < 5000, `${err.message.length} characters`);
    const text = await printed(meta);
    assert.equal(text.code, TASK_FAILED_EXIT);
    assert.match(text.out, /^FAILURE: X: \[{100,}\.\.\.\n$/);
  });

  Deno.test(`exc args: --json prints an exc_message nested ${depth} deep cut at 1,000 levels`, async () => {
    // It threw RangeError (exit 70): jsonText's replacer recursed once per level.
    const meta = pyMeta("deep", "X", "[".repeat(depth) + "]".repeat(depth));
    const text = await printed(meta, true);
    assert.equal(text.code, TASK_FAILED_EXIT);
    const printedMeta = JSON.parse(text.out);
    assert.equal(printedMeta.status, "FAILURE");
    let inner = printedMeta.result.exc_message;
    let arrays = 0;
    while (Array.isArray(inner)) [inner, arrays] = [inner[0], arrays + 1];
    // 1,000 levels: the printed object, its result, then 998 of the arrays.
    assert.deepEqual([inner, arrays], ["<nested deeper than 1000 levels: not shown>", 998]);
  });
}
