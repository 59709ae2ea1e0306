/**
 * A producer that is not Celery sends keyword arguments by the hundred
 * thousand to a task whose handler takes positional arguments only: the
 * TypeError stored and logged names a few and counts the rest, instead of
 * listing every name (megabytes in the result and in one log line).
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { decodeResultMeta } from "../protocol.ts";
import { runTask } from "../src/worker/executor.ts";
import { messageRunRequest } from "./helpers/run_info.ts";

async function failureFor(kwargs: Record<string, unknown>, params?: string[]): Promise<string> {
  const app = new Celery({ broker: "kv://:memory:" });
  if (params) app.task("hostile.echo", { params }, (v: unknown) => v);
  else app.task("hostile.echo", (v: unknown) => v);
  const id = crypto.randomUUID();
  const out = await runTask(
    app.tasks,
    messageRunRequest({
      task: "hostile.echo",
      id,
      args: [1],
      kwargs,
      now: new Date(),
      origin: "x@y",
      replyTo: "",
    }),
    new AbortController().signal,
  );
  const meta = decodeResultMeta(out.meta!);
  assert.equal(meta.status, "FAILURE");
  const exc = meta.result as { exc_type: string; exc_message: string[] };
  assert.equal(exc.exc_type, "TypeError");
  return exc.exc_message[0];
}

Deno.test("hostile kwargs: 200,000 keyword names give an error of a line that counts them", async () => {
  const kwargs: Record<string, number> = {};
  for (let i = 0; i < 200_000; i++) kwargs[`k${i}`] = i;
  const message = await failureFor(kwargs);
  // Before: every name was listed, 1.4 MB of message.
  assert.ok(message.length < 400, `${message.length} characters`);
  assert.match(
    message,
    /got keyword argument\(s\) k0, k1, .*, k9 and 199,990 more, but its handler/,
  );
});

Deno.test("hostile kwargs: a few keyword names are all listed", async () => {
  const message = await failureFor({ a: 1, b: 2 });
  assert.match(message, /^hostile\.echo\(\) got keyword argument\(s\) a, b, but its handler/);
});

Deno.test("hostile kwargs: a keyword name of a megabyte is shown by its first 100 characters", async () => {
  const long = "n".repeat(1_000_000);
  // Before: the whole name was in the message, a megabyte stored and logged, in both messages.
  const positional = await failureFor({ [long]: 1, b: 2 });
  assert.ok(positional.length < 400, `${positional.length} characters`);
  assert.match(positional, new RegExp(`argument\\(s\\) ${"n".repeat(100)}…, b, but its handler`));
  const named = await failureFor({ [long]: 1 }, ["v"]);
  assert.ok(named.length < 400, `${named.length} characters`);
  assert.match(named, new RegExp(`unexpected keyword argument '${"n".repeat(100)}…'$`));
});
