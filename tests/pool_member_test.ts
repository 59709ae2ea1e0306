import assert from "node:assert/strict";
import type { RunRequest } from "../src/worker/executor.ts";
import { type Member, postTo } from "../src/worker/pool_member.ts";
import type { ToRunnerPosted } from "../src/worker/pool_protocol.ts";
import { unpackRun } from "../src/worker/run_batch.ts";
import { runRequest } from "./helpers/run_info.ts";

/** A member whose Web Worker keeps what is posted to it, cloned as a post clones it. */
function recordingMember(): { member: Member; posted: RunRequest[][] } {
  const posted: RunRequest[][] = [];
  const worker = {
    postMessage: (msg: ToRunnerPosted) => {
      if (msg.type === "run") posted.push(unpackRun(structuredClone(msg.batch)));
    },
  };
  const member = {
    worker,
    sent: new Int32Array(1),
    dead: false,
  } as unknown as Member;
  return { member, posted };
}

/** Ten bodies as views of one buffer, as a Redis take decodes its small bodies. */
function takeBodies(): Uint8Array[] {
  const texts = Array.from({ length: 10 }, (_, i) => `[[${i}], {}, {}]`.padEnd(200, " "));
  const packed = new TextEncoder().encode(texts.join(""));
  return texts.map((_, i) => packed.subarray(i * 200, (i + 1) * 200));
}

Deno.test("postTo: a run message carries only its own bodies, not the rest of their take's buffer", () => {
  const bodies = takeBodies();
  const { member, posted } = recordingMember();
  // Tasks that block a millisecond or more travel one to a message.
  for (let i = 0; i < 3; i++) postTo(member, { type: "run", batch: [runRequest(i, bodies[i])] });
  postTo(member, { type: "run", batch: [runRequest(3, bodies[3]), runRequest(4, bodies[4])] });
  assert.equal(posted.length, 4);
  for (const [i, batch] of posted.entries()) {
    const own = batch.reduce((n, r) => n + r.body.byteLength, 0);
    for (const r of batch) {
      assert.equal(r.body.buffer.byteLength, own, `message ${i} clones its bodies only`);
      assert.deepEqual(r.body, bodies[r.seq]);
    }
  }
  assert.equal(member.sent[0], 5);
});

Deno.test("postTo: a run message holding its bodies' whole buffer posts it as it is", () => {
  const bodies = takeBodies();
  const batch = bodies.map((b, i) => runRequest(i, b));
  const { member, posted } = recordingMember();
  postTo(member, { type: "run", batch });
  assert.ok(batch.every((r, i) => r.body === bodies[i]), "no copy made");
  const [got] = posted;
  assert.equal(got[0].body.buffer.byteLength, 2000);
  assert.ok(got.every((r) => r.body.buffer === got[0].body.buffer));
  assert.deepEqual(got.map((r) => r.body), bodies);
});

Deno.test("postTo: bodies of their own are posted without a copy", () => {
  const bodies = takeBodies().map((b) => b.slice());
  const batch = [runRequest(0, bodies[0]), runRequest(1, bodies[1])];
  const { member } = recordingMember();
  postTo(member, { type: "run", batch });
  assert.ok(batch.every((r, i) => r.body === bodies[i]));
});
