import assert from "node:assert/strict";
import { pollInspect } from "../src/dashboard/inspect_poll.ts";
import { ViewModel } from "../src/dashboard/view_model.ts";
import type { Inspector } from "../src/dashboard/feed.ts";

/** An inspector that answers nobody and ends its wait when the signal aborts, as the real one does. */
function silentInspector(started: () => void): Inspector {
  return (_command, { timeout, signal }) =>
    new Promise((resolve) => {
      started();
      const timer = setTimeout(() => resolve({}), (timeout ?? 1) * 1000);
      signal?.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve({});
      }, { once: true });
    });
}

/** "stopped" once `polling` ends, or "still polling" after `ms` (far beyond what stopping takes). */
async function stoppedWithin(polling: Promise<void>, ms: number): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    polling.then(() => "stopped"),
    new Promise<string>((r) => timer = setTimeout(() => r("still polling"), ms)),
  ]);
  clearTimeout(timer);
  return outcome;
}

Deno.test("inspect poll: aborting during a round ends the poll, not after the sleep to the next round", async () => {
  const stop = new AbortController();
  const asking = Promise.withResolvers<void>();
  const polling = pollInspect({
    inspector: silentInspector(asking.resolve),
    model: new ViewModel(),
    signal: stop.signal,
    intervalMs: 600_000,
    timeout: 60,
  });
  await asking.promise;
  stop.abort();
  assert.equal(await stoppedWithin(polling, 10_000), "stopped");
});

Deno.test("inspect poll: an inspector rejecting with a non-Error value is logged, not thrown", async () => {
  const stop = new AbortController();
  let asks = 0;
  const polling = pollInspect({
    inspector: () => {
      asks++;
      stop.abort();
      return Promise.reject(undefined);
    },
    model: new ViewModel(),
    signal: stop.signal,
  });
  await polling;
  assert.equal(asks, 2);
});

Deno.test("inspect poll: stopping does not wait for an inspector that ignores the signal", async () => {
  const stop = new AbortController();
  const asking = Promise.withResolvers<void>();
  const never = Promise.withResolvers<Record<string, unknown>>();
  const polling = pollInspect({
    inspector: () => {
      asking.resolve();
      return never.promise;
    },
    model: new ViewModel(),
    signal: stop.signal,
  });
  await asking.promise;
  stop.abort();
  assert.equal(await stoppedWithin(polling, 10_000), "stopped");
  never.resolve({});
});
