/**
 * A succeeded task whose callback or next chain step, defined on this
 * worker, would be called with arguments it does not take fails itself with
 * Python's TypeError, as a Celery 5.2.6 worker's `apply_async` of it does
 * (seen with `group.link()`, which Celery makes immutable: the group's first
 * member failed on a Python worker and succeeded on a Celeriac one).
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import {
  chainSignature as chain,
  chordSignature,
  decodeResultMeta,
  groupSignature as group,
  type SignatureDict,
} from "../protocol.ts";
import { runTask } from "../src/worker/executor.ts";
import { messageRunRequest } from "./helpers/run_info.ts";

const app = new Celery({ broker: "kv://:memory:" });
app.task("f.add", (a: number, b: number) => a + b);
app.task("f.one", (x: number) => x);
app.task("f.loose", { typing: false }, (a: number, b: number) => a + b);

function chord(header: SignatureDict[], body: SignatureDict): SignatureDict {
  return chordSignature(group(header), body);
}

function s(task: string, args: unknown[], immutable = false): SignatureDict {
  return { task, args, kwargs: {}, options: {}, subtask_type: null, immutable };
}

let charged = 0;
app.task("f.charge", { autoretryFor: [Error], maxRetries: 3 }, (a: number, b: number) => {
  charged++;
  return a + b;
});

async function outcome(
  embed: { callbacks?: SignatureDict[]; chain?: SignatureDict[] },
  task = "f.add",
) {
  const id = crypto.randomUUID();
  const out = await runTask(
    app.tasks,
    messageRunRequest({
      task,
      id,
      args: [1, 2],
      kwargs: {},
      embed,
      now: new Date(),
      origin: "x@y",
      replyTo: "",
    }),
    new AbortController().signal,
  );
  const meta = decodeResultMeta(out.meta!);
  return {
    ok: out.ok,
    status: meta.status,
    result: meta.result,
    followUp: out.followUp,
    retry: out.retry,
  };
}

Deno.test("follow-up check: a callback or next step that does not fit fails the task with Python's TypeError", async () => {
  const cases: [{ callbacks?: SignatureDict[]; chain?: SignatureDict[] }, string][] = [
    [
      { callbacks: [s("f.add", [], true)] },
      "add() missing 2 required positional arguments: 'a' and 'b'",
    ],
    [{ chain: [s("f.add", [1, 2])] }, "add() takes 2 positional arguments but 3 were given"],
  ];
  for (const [embed, message] of cases) {
    const o = await outcome(embed);
    assert.equal(o.ok, false);
    assert.equal(o.status, "FAILURE");
    const exc = o.result as { exc_type: string; exc_message: string[] };
    assert.deepEqual([exc.exc_type, exc.exc_message[0]], ["TypeError", message]);
  }
});

Deno.test("follow-up check: fitting calls, canvases and tasks defined elsewhere are sent", async () => {
  const group = { ...s("celery.group", []), subtask_type: "group", kwargs: { tasks: [] } };
  for (
    const embed of [
      { callbacks: [s("f.add", [10]), s("f.add", [1, 1], true), s("py.any", [1, 2, 3])] },
      { chain: [s("f.add", [], true), s("f.add", [5])] },
      { callbacks: [group as SignatureDict] },
    ]
  ) {
    const o = await outcome(embed);
    assert.deepEqual([o.ok, o.status, o.result], [true, "SUCCESS", 3], JSON.stringify(embed));
    assert.ok(o.followUp);
  }
});

Deno.test("follow-up check: its TypeError is raised outside the body, so autoretryFor does not re-run a succeeded task", async () => {
  const o = await outcome({ callbacks: [s("f.add", [], true)] }, "f.charge");
  assert.equal(charged, 1);
  assert.equal(o.retry, undefined);
  assert.deepEqual([o.ok, o.status], [false, "FAILURE"]);
  assert.equal((o.result as { exc_type: string }).exc_type, "TypeError");
});

Deno.test("follow-up check: a canvas as callback or next step is checked as its apply_async sends it (members, header, first step)", async () => {
  const misfit = "add() missing 1 required positional argument: 'b'";
  const add = s("f.add", []);
  const one = s("f.one", []);
  const cases: [string, { callbacks?: SignatureDict[]; chain?: SignatureDict[] }][] = [
    ["group step", { chain: [group([one, add, one])] }],
    ["chord step", { chain: [chord([one, add], one)] }],
    ["chain step", { chain: [chain([add, one])] }],
    ["group callback", { callbacks: [one, group([one, add])] }],
    ["group step, steps after", { chain: [one, group([one, add])] }],
  ];
  for (const [label, embed] of cases) {
    const o = await outcome(embed);
    assert.deepEqual([o.ok, o.status], [false, "FAILURE"], label);
    const exc = o.result as { exc_type: string; exc_message: string[] };
    assert.deepEqual([exc.exc_type, exc.exc_message[0]], ["TypeError", misfit], label);
  }
});

Deno.test("follow-up check: a canvas's fitting calls, its chord body and typing: false tasks are not refused", async () => {
  const one = s("f.one", []);
  for (
    const embed of [
      { chain: [group([one, s("f.add", [1])])] },
      { chain: [chord([one, s("f.add", [1])], s("f.add", [], true))] },
      { chain: [group([one, s("f.loose", [])])] },
      { callbacks: [s("f.loose", [])] },
    ]
  ) {
    const o = await outcome(embed);
    assert.deepEqual([o.ok, o.status, o.result], [true, "SUCCESS", 3], JSON.stringify(embed));
    assert.ok(o.followUp);
  }
});
