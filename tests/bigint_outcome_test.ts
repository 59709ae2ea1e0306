// deno-lint-ignore-file no-console
/**
 * Results and exception arguments holding integers beyond 2^53 (Python's
 * `2**70`, decoded as `bigint`s) are shown with all their digits:
 * `get()` rejected with a raw TypeError ("Do not know how to serialize a
 * BigInt") instead of a TaskError, and `result ID` / `call --wait` exited 70.
 */

import assert from "node:assert/strict";
import { Celery, TaskError } from "../mod.ts";
import { printOutcome } from "../src/cli/task_outcome.ts";
import { checkSignature } from "../src/protocol/embed.ts";
import { ProtocolError } from "../src/protocol/errors.ts";
import { parseRate } from "../src/protocol/rate.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";

const BIG = 2n ** 70n;
const DIGITS = "1180591620717411303424";

async function stored(app: Celery, status: "SUCCESS" | "FAILURE", result: unknown) {
  const id = crypto.randomUUID();
  const meta = encodeResultMeta({ taskId: id, status, result });
  await (await app.resultBackend()).store([{ taskId: id, status, meta }]);
  return app.asyncResult(id);
}

const failure = { exc_type: "ValueError", exc_message: [BIG], exc_module: "builtins" };

/** Run `fn` with console.log and console.error collected. */
async function printed(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const log = console.log;
  const error = console.error;
  let out = "";
  console.log = console.error = (...args: unknown[]) => out += args.join(" ") + "\n";
  try {
    return { code: await fn(), out };
  } finally {
    console.log = log;
    console.error = error;
  }
}

Deno.test("bigint outcome: get() of a failure with a 2**70 argument rejects with a TaskError", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  try {
    const r = await stored(app, "FAILURE", failure);
    await assert.rejects(r.get({ timeout: 1000 }), (e: unknown) => {
      assert.ok(e instanceof TaskError, String(e));
      assert.deepEqual(e.excMessage, [BIG]);
      assert.match(e.message, new RegExp(`ValueError: ${DIGITS}$`));
      return true;
    });
  } finally {
    await app.close();
  }
});

Deno.test("bigint outcome: result and call --wait print 2**70 results and arguments", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: "kv://:memory:" });
  try {
    const ok = await stored(app, "SUCCESS", [BIG, 1]);
    const failed = await stored(app, "FAILURE", failure);
    const plain = await printed(() => printOutcome(ok, { timeout: 1 }));
    assert.deepEqual(plain, { code: 0, out: `[\n  ${DIGITS},\n  1\n]\n` });
    const json = await printed(() => printOutcome(ok, { timeout: 1, json: true }));
    assert.equal(json.code, 0);
    assert.match(json.out, new RegExp(`"result": \\[\\n\\s+${DIGITS},`));
    const failedJson = await printed(() => printOutcome(failed, { timeout: 1, json: true }));
    assert.equal(failedJson.code, 1);
    assert.match(failedJson.out, new RegExp(`"exc_message": \\[\\n\\s+${DIGITS}\\n`));
    const failedText = await printed(() => printOutcome(failed, { timeout: 1 }));
    assert.deepEqual(failedText, { code: 1, out: `FAILURE: ValueError: ${DIGITS}\n` });
  } finally {
    await app.close();
  }
});

Deno.test("bigint outcome: a 2**70 rate or callback is refused with the usual error", () => {
  assert.throws(() => parseRate(BIG as unknown as number), (e: unknown) => {
    assert.ok(e instanceof TypeError);
    assert.match(e.message, new RegExp(`must be a rate .* got ${DIGITS}$`));
    return true;
  });
  assert.throws(() => checkSignature(BIG, "link", "t-1"), (e: unknown) => {
    assert.ok(e instanceof ProtocolError, String(e));
    assert.match(e.message, new RegExp(`expected an object, got ${DIGITS}`));
    return true;
  });
});
