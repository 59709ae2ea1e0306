/**
 * A worker that dies right after claiming a spoiled chord's failure leaves
 * the chord failed: the claim stores the body's FAILURE itself (Redis: in
 * the claim script; KV: in the claim's commit). Before, the claim deleted
 * the join keys and the worker stored the FAILURE afterwards: a worker that
 * died in between left no keys for another member or a redelivery to fail
 * the chord with, and the body's waiters waited forever.
 *
 * Redis: the member joins in a process of its own, through a proxy that
 * holds Redis's reply to the claim script (the script has run); the test
 * kills the process there. KV: the worker's own store of the FAILURE fails,
 * as if it died at that point.
 */

import assert from "node:assert/strict";
import { openKvBackend } from "../src/backend/kv.ts";
import type { ResultBackend, StoreEntry } from "../src/backend/port.ts";
import { joinChords } from "../src/worker/canvas_send.ts";
import { chordPart, withChordBackend } from "./helpers/chord_keys.ts";
import { Proc } from "./helpers/procs.ts";
import { REDIS_URL } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";
import { taskSig } from "./helpers/signatures.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";

/**
 * A proxy to the test Redis that holds, never relaying it, Redis's reply to
 * the first script call naming `marker` (a NOSCRIPT reply, which ioredis
 * answers with the script itself, is relayed); `held` resolves then.
 */
function holdClaimReply(marker: string) {
  const target = new URL(REDIS_URL);
  const held = Promise.withResolvers<void>();
  const script = /\$(7\r\nevalsha|4\r\neval)\r\n/i;
  const proxy = TcpProxy.start({ hostname: target.hostname, port: Number(target.port) }, {
    filter: () => {
      let claimSent = false;
      let holding = false;
      return (chunk, upstream) => {
        const text = new TextDecoder().decode(chunk);
        if (upstream) {
          if (script.test(text) && text.includes(marker)) claimSent = true;
          return true;
        }
        if (holding) return false;
        if (!claimSent || text.startsWith("-NOSCRIPT")) return true;
        holding = true;
        held.resolve();
        return false;
      };
    },
  });
  return { port: proxy.port, held: held.promise, close: () => proxy.close() };
}

/**
 * The body's waiter, started before the crash, hears its FAILURE. The
 * timer only guards against a hang: before the fix nothing was stored and
 * the wait would not end on its own.
 */
async function assertWaiterHeardFailure(
  waiter: Promise<{ status: string }>,
  waiting: AbortController,
): Promise<void> {
  const guard = setTimeout(() => waiting.abort(), 10_000);
  const heard = await waiter.finally(() => clearTimeout(guard));
  assert.equal(heard.status, "FAILURE", "the body's waiter heard the FAILURE");
}

Deno.test({
  name:
    "redis chord: a worker killed right after claiming a spoiled chord's failure leaves its body failed",
  ignore: WITHOUT_REDIS,
}, async () => {
  await withChordBackend("chord-claim-crash", async (backend, r, stem) => {
    const own = stem("g").slice(0, -"celery-taskset-meta-g".length);
    await r.set(stem("g") + ".s", "lots");
    const bodyId = `body-${crypto.randomUUID()}`;
    const gate = holdClaimReply(stem("g") + ".j");
    const waiting = new AbortController();
    const waiter = backend.waitFor(bodyId, waiting.signal);
    const url = new URL(REDIS_URL);
    url.host = `127.0.0.1:${gate.port}`;
    url.search = `?global_keyprefix=${encodeURIComponent(own)}`;
    const member = Proc.start("member", Deno.execPath(), [
      "run",
      "-A",
      "tests/apps/chord_join_app.ts",
      url.href,
      "g",
      bodyId,
    ]);
    try {
      await gate.held;
      await member.stop("SIGKILL");
      assert.doesNotMatch(member.output, /joined/);
      assert.equal(await r.exists(stem("g") + ".s"), 0, "the claim ran: the size is gone");
      const stored = await backend.get(bodyId);
      assert.equal(
        stored?.status,
        "FAILURE",
        `the body's result after the crash: ${stored?.status}`,
      );
      const { exc_message } = stored.result as { exc_message: string[] };
      assert.match(exc_message[0], /^Join error: .*\.s holds "lots", not a count/);
      await assertWaiterHeardFailure(waiter, waiting);
    } finally {
      waiting.abort();
      await waiter.catch(() => {});
      await member.stop("SIGKILL");
      await gate.close();
    }
  });
});

Deno.test("kv chord: a worker that dies right after claiming a spoiled chord's failure leaves its body failed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-kv-chord-claim-crash-" });
  const backend = await openKvBackend(`kv://${dir}/results.sqlite`, { prefix: ["cc"] });
  const raw = await Deno.openKv(`${dir}/results.sqlite`);
  const waiting = new AbortController();
  const waiter = backend.waitFor("body", waiting.signal);
  try {
    await raw.set(["cc", "chord", "g", "size"], "lots");
    // The worker dies where it would store anything itself: after the claim.
    const dying = {
      transport: backend.transport,
      store: (_entries: readonly StoreEntry[]) => Promise.reject(new Error("the worker died")),
      chordPartReturn: backend.chordPartReturn.bind(backend),
      chordCleanup: backend.chordCleanup.bind(backend),
    } as unknown as ResultBackend;
    const join = {
      part: chordPart("g", 0),
      body: taskSig("t.sum", "body"),
      parent: { id: "member-0", rootId: "root", origin: "test@host", defaultQueue: "celery" },
    };
    await joinChords([join], { backend: dying, publish: () => Promise.resolve() })
      .catch((err: Error) => assert.equal(err.message, "the worker died"));
    assert.equal((await raw.get(["cc", "chord", "g", "size"])).value, null, "the claim ran");
    const stored = await backend.get("body");
    assert.equal(stored?.status, "FAILURE", `the body's result after the crash: ${stored?.status}`);
    await assertWaiterHeardFailure(waiter, waiting);
  } finally {
    waiting.abort();
    await waiter.catch(() => {});
    raw.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});
