/**
 * Pure retry and rate-limit logic, without servers: the retry message
 * against Celery 5.2's captured retry, RETRY and MaxRetriesExceededError
 * metas, countdown/eta/limit decisions, backoff, autoretry, rate parsing,
 * token buckets, the rate limiter, and the order in which retries settle.
 */

import assert from "node:assert/strict";
import type { ResultBackend, StoreEntry } from "../src/backend/port.ts";
import type { Broker, Delivery, Rejection, TokenGrant, TokenRequest } from "../src/broker/port.ts";
import { Celery, type TaskContext } from "../mod.ts";
import { MaxRetriesExceededError, Retry } from "../src/client/retry.ts";
import { decodeEnvelope } from "../src/protocol/envelope.ts";
import type { Message } from "../src/protocol/message.ts";
import { parseRate } from "../src/protocol/rate.ts";
import { decodeResultMeta } from "../src/protocol/result_meta.ts";
import { encodeRetryMessage } from "../src/protocol/retry_message.ts";
import { encodeTaskMessage } from "../src/protocol/task_message.ts";
import { decodeTaskBody, decodeTaskHeaders } from "../src/protocol/task_request.ts";
import { parsePyDate } from "../src/protocol/time.ts";
import { type RunOutcome, type RunRequest, runTask } from "../src/worker/executor.ts";
import { LocalTokenBuckets, RateLimiter, takeTokens } from "../src/worker/rate_limit.ts";
import { Lifecycle } from "../src/worker/lifecycle.ts";
import { settleRetries } from "../src/worker/retries.ts";
import { autoretryOptions, backoffDelay, planRetry } from "../src/worker/retry_policy.ts";
import { messageRunRequest } from "./helpers/run_info.ts";

const FIXTURES = new URL("./fixtures/celery-5.2/redis/worker/", import.meta.url);

interface WorkerFixture {
  task_messages_pushed_in_window: { raw: string }[];
  published_on_result_channels_in_order: { raw: string }[];
  final_meta_values: Record<string, { raw: string }>;
}

function fixture(name: string): WorkerFixture {
  return JSON.parse(Deno.readTextFileSync(new URL(name, FIXTURES))) as WorkerFixture;
}

const EMPTY_EMBED = { callbacks: null, errbacks: null, chain: null, chord: null };

Deno.test("retry message: the same message Celery 5.2 republished for self.retry(countdown=1)", () => {
  const [first, second] = fixture("result_retry_then_success.json").task_messages_pushed_in_window
    .map((m) => decodeEnvelope(m.raw));
  const req = decodeTaskHeaders(first);
  const body = decodeTaskBody(first, req.id);
  const retry = encodeRetryMessage({
    request: req,
    original: first,
    args: body.args,
    kwargs: body.kwargs,
    embed: body.embed,
    retries: req.retries + 1,
    eta: parsePyDate(String(second.headers.eta)),
    now: new Date(),
    origin: String(second.headers.origin),
  });
  // Only the sub-millisecond digits of the eta differ (JavaScript dates have milliseconds).
  const eta = String(second.headers.eta).replace(/(\.\d{3})\d{3}/, "$1000");
  assert.deepEqual(retry.headers, { ...second.headers, eta });
  assert.deepEqual(Object.keys(retry.headers), Object.keys(second.headers));
  assert.equal(new TextDecoder().decode(retry.body), new TextDecoder().decode(second.body));
  assert.equal(retry.contentType, second.contentType);
  for (const k of ["correlation_id", "reply_to", "delivery_mode", "priority"]) {
    assert.equal(retry.properties[k], second.properties[k], k);
  }
  assert.equal(retry.properties.expiration, undefined);
});

Deno.test("retry message: parent, group, limits, priority, custom headers and expires are kept", () => {
  const now = new Date("2030-01-01T00:00:00Z");
  const original = encodeTaskMessage({
    task: "tasks.step",
    id: "child",
    args: [2],
    kwargs: { k: 1 },
    embed: {
      chain: [{
        task: "tasks.next",
        args: [],
        kwargs: {},
        options: {},
        subtask_type: null,
        immutable: false,
      }],
    },
    now,
    expires: "2030-01-01T00:02:00+00:00",
    origin: "gen1@host",
    replyTo: "oid",
    priority: 6,
    group: "g",
    groupIndex: 1,
    timeLimit: 30,
    softTimeLimit: 20,
    rootId: "root",
    parentId: "parent",
    shadow: "nice name",
    ignoreResult: true,
    headers: { tenant: "acme" },
  });
  const later = new Date(now.getTime() + 30_000);
  const retry = encodeRetryMessage({
    request: decodeTaskHeaders(original),
    original,
    args: [3],
    kwargs: {},
    embed: decodeTaskBody(original, "child").embed,
    retries: 1,
    eta: new Date(later.getTime() + 5000),
    now: later,
    origin: "celeriac@host",
  });
  const h = retry.headers;
  assert.equal(h.parent_id, "parent", "a chain step keeps its parent");
  assert.equal(h.root_id, "root");
  assert.equal(h.group, "g");
  assert.equal(h.group_index, 1);
  assert.deepEqual(h.timelimit, [30, 20]);
  assert.equal(h.shadow, "nice name");
  assert.equal(h.ignore_result, true);
  assert.equal(h.tenant, "acme");
  assert.equal(h.argsrepr, "(3,)");
  assert.equal(h.eta, "2030-01-01T00:00:35+00:00");
  assert.equal(h.expires, "2030-01-01T00:02:00+00:00", "expires is kept verbatim");
  assert.equal(retry.properties.expiration, "90000", "expiration counts from the retry");
  assert.equal(retry.properties.priority, 6);
  assert.equal(decodeTaskBody(retry, "child").embed.chain?.[0].task, "tasks.next");
});

function request(id: string, task: string, args: unknown[], retries: number): RunRequest {
  return messageRunRequest({
    task,
    id,
    args,
    kwargs: {},
    now: new Date(),
    origin: "gen1@host",
    replyTo: "r",
    retries,
  });
}

class KeyError extends Error {
  override name = "KeyError";
}

Deno.test("RETRY and MaxRetriesExceededError metas have Celery 5.2's content", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  app.task("capapp.retry_once", { bind: true }, (ctx: TaskContext, _n: number) => {
    throw ctx.retry({ exc: new KeyError("transient"), countdown: 1 });
  });
  app.task("capapp.always_retry", { bind: true, maxRetries: 1 }, (ctx: TaskContext) => {
    throw ctx.retry({ countdown: 1 });
  });
  const once = fixture("result_retry_then_success.json");
  const onceId = Object.keys(once.final_meta_values)[0];
  const out = await runTask(
    app.tasks,
    request(onceId, "capapp.retry_once", [7], 0),
    new AbortController().signal,
  );
  const got = decodeResultMeta(out.meta!);
  const want = decodeResultMeta(once.published_on_result_channels_in_order[0].raw);
  assert.equal(got.status, "RETRY");
  assert.deepEqual(got.result, want.result);
  assert.deepEqual(got.children, want.children);
  assert.equal(got.date_done, null);
  assert.match(got.traceback ?? "", /^Retry: Retry in 1s: KeyError\('transient'\)/);
  assert.equal(out.retry?.retries, 1);

  const max = fixture("result_retry_max_exceeded.json");
  const maxId = Object.keys(max.final_meta_values)[0];
  const failed = await runTask(
    app.tasks,
    request(maxId, "capapp.always_retry", [], 1),
    new AbortController().signal,
  );
  assert.equal(failed.retry, undefined);
  assert.deepEqual(
    decodeResultMeta(failed.meta!).result,
    decodeResultMeta(max.final_meta_values[maxId].raw).result,
  );
});

Deno.test("planRetry: countdown, eta, default delay and the retry limit", () => {
  const now = new Date(1_000_000);
  const state = { name: "t.x", id: "1", retries: 0, args: [1, "a"], kwargs: { k: null } };
  const p = planRetry(state, {}, {}, now);
  assert.ok(!(p instanceof Error));
  assert.equal(p.eta.getTime(), now.getTime() + 180_000, "default_retry_delay is 180 s");
  assert.equal(p.retries, 1);
  assert.equal(p.when, "in 180s");
  const q = planRetry(state, {}, { defaultRetryDelay: 5 }, now);
  assert.equal((q as { eta: Date }).eta.getTime(), now.getTime() + 5000);
  const eta = new Date(2_000_000);
  const r = planRetry(state, { eta }, {}, now);
  assert.equal((r as { eta: Date }).eta, eta);
  assert.match((r as { when: string }).when, /^at /);
  const s = planRetry(state, { eta, countdown: 2 }, {}, now);
  assert.equal((s as { eta: Date }).eta.getTime(), now.getTime() + 2000, "countdown wins");

  const last = { ...state, retries: 3 };
  const e = planRetry(last, {}, {}, now);
  assert.ok(e instanceof MaxRetriesExceededError);
  assert.equal(e.message, "Can't retry t.x[1] args:(1, 'a') kwargs:{'k': None}");
  assert.equal(e.code, "MAX_RETRIES_EXCEEDED");
  const cause = new KeyError("k");
  assert.equal(planRetry(last, { exc: cause }, {}, now), cause);
  assert.ok(!(planRetry(last, {}, { maxRetries: null }, now) instanceof Error), "null: forever");
  assert.ok(!(planRetry(last, { maxRetries: 4 }, {}, now) instanceof Error));
  assert.ok(planRetry(state, {}, { maxRetries: 0 }, now) instanceof MaxRetriesExceededError);
  assert.ok(
    planRetry(state, { args: [9] }, { maxRetries: 0 }, now) instanceof Error &&
      /args:\(9,\)/.test(
        (planRetry(state, { args: [9] }, { maxRetries: 0 }, now) as Error).message,
      ),
  );
  assert.throws(() => planRetry(state, { countdown: -1 }, {}, now), RangeError);
  const wrong = (options: Record<string, unknown>) => () => planRetry(state, options, {}, now);
  assert.throws(wrong({ eta: "2030-01-01" }), /retry eta must be a Date, got "2030-01-01"/);
  assert.throws(wrong({ eta: new Date(NaN) }), /retry eta must be a Date, got an invalid Date/);
  assert.throws(wrong({ args: { a: 1 } }), /retry args must be an array, got an object/);
  assert.throws(wrong({ kwargs: [1] }), /retry kwargs must be a plain object, got an array/);
});

Deno.test("backoffDelay follows get_exponential_backoff_interval", () => {
  const delays = [0, 1, 2, 3, 4, 10].map((retries) =>
    backoffDelay({ factor: 1, retries, maximum: 600, jitter: false })
  );
  assert.deepEqual(delays, [1, 2, 4, 8, 16, 600]);
  assert.equal(backoffDelay({ factor: 3, retries: 2, maximum: 600, jitter: false }), 12);
  assert.equal(
    backoffDelay({ factor: 1, retries: 3, maximum: 600, jitter: true, random: () => 0 }),
    0,
  );
  assert.equal(
    backoffDelay({ factor: 1, retries: 3, maximum: 600, jitter: true, random: () => 0.999 }),
    8,
  );
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay({ factor: 2, retries: 4, maximum: 20, jitter: true });
    assert.ok(Number.isInteger(d) && d >= 0 && d <= 20);
  }
});

Deno.test("autoretryOptions: classes, predicates, backoff; never for Retry signals", () => {
  class Flaky extends Error {}
  const byClass = { autoretryFor: [Flaky], retryKwargs: { countdown: 7, maxRetries: 5 } };
  const err = new Flaky("x");
  assert.deepEqual(autoretryOptions(byClass, err, 0), { countdown: 7, maxRetries: 5, exc: err });
  assert.equal(autoretryOptions(byClass, new Error("other"), 0), null);
  assert.equal(autoretryOptions({}, err, 0), null);
  const byPredicate = { autoretryFor: (e: unknown) => String(e).includes("503") };
  assert.ok(autoretryOptions(byPredicate, new Error("HTTP 503"), 0));
  assert.equal(autoretryOptions(byPredicate, new Error("HTTP 400"), 0), null);
  const all = { autoretryFor: [Error], retryBackoff: true, retryJitter: false };
  assert.equal(autoretryOptions(all, new Error("x"), 3)?.countdown, 8);
  assert.equal(autoretryOptions({ ...all, retryBackoffMax: 5 }, new Error("x"), 3)?.countdown, 5);
  assert.equal(autoretryOptions(all, new Retry("in 1s", new Date()), 0), null);
  assert.equal(autoretryOptions(all, new MaxRetriesExceededError("no"), 0), null);
});

Deno.test("parseRate reads Celery's notation and names the option in errors", () => {
  assert.equal(parseRate("10/s"), 10);
  assert.equal(parseRate("10"), 10);
  assert.equal(parseRate("100/m"), 100 / 60);
  assert.equal(parseRate("1000/h"), 1000 / 3600);
  assert.equal(parseRate("0.5/s"), 0.5);
  assert.equal(parseRate(3), 3);
  assert.equal(parseRate("0"), 0);
  for (const bad of ["10/d", "fast", "-1/s", "", "1/s/s"]) {
    assert.throws(() => parseRate(bad, 'rateLimit of task "x"'), /rateLimit of task "x"/);
  }
  assert.throws(() => parseRate(-1), TypeError);
  assert.throws(() => parseRate(NaN), TypeError);
});

Deno.test("token buckets start full, grant whole tokens, and say when the next is due", () => {
  const req = { key: "k", rate: 10, capacity: 1, count: 3 };
  let r = takeTokens(undefined, 0, req);
  assert.deepEqual(r.grant, { granted: 1, retryAfterMs: 100 });
  r = takeTokens(r.state, 50, req);
  assert.deepEqual(r.grant, { granted: 0, retryAfterMs: 50 });
  r = takeTokens(r.state, 100, req);
  assert.deepEqual(r.grant, { granted: 1, retryAfterMs: 100 });
  r = takeTokens(r.state, 10_000, { ...req, capacity: 2 });
  assert.deepEqual(r.grant, { granted: 2, retryAfterMs: 100 });
  assert.deepEqual(takeTokens(undefined, 0, { ...req, count: 1 }).grant, {
    granted: 1,
    retryAfterMs: 0,
  });
  let now = 0;
  const buckets = new LocalTokenBuckets(() => now);
  assert.deepEqual(buckets.acquire([req, { ...req, key: "other" }]).map((g) => g.granted), [1, 1]);
  now = 99;
  assert.equal(buckets.acquire([req])[0].granted, 0);
  now = 100;
  assert.equal(buckets.acquire([req])[0].granted, 1);
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(cond(), "condition not reached within 1 s");
}

Deno.test("RateLimiter: one acquire per batch, order kept, asks again when due, release, drain", async () => {
  const asked: TokenRequest[][] = [];
  const answers: TokenGrant[][] = [
    [{ granted: 1, retryAfterMs: 5 }, { granted: 1, retryAfterMs: 0 }],
    [{ granted: 1, retryAfterMs: 5 }],
  ];
  const ready: string[] = [];
  const limiter = new RateLimiter<string>({
    acquire: (requests) => {
      asked.push(requests.map((r) => ({ ...r })));
      return Promise.resolve(
        answers.shift() ?? requests.map(() => ({ granted: 0, retryAfterMs: 60_000 })),
      );
    },
    onReady: (items) => ready.push(...items),
  });
  limiter.setRate("a", 10);
  limiter.setRate("b", 2);
  for (const x of ["a1", "a2", "a3"]) limiter.submit("a", x);
  limiter.submit("b", "b1");
  limiter.submit("free", "f1");
  assert.deepEqual(ready, ["f1"], "a task without a rate is ready at once");
  assert.equal(limiter.size, 4);
  await until(() => asked.length >= 1 && ready.length >= 3);
  assert.deepEqual(asked[0], [
    { key: "a", rate: 10, capacity: 1, count: 3 },
    { key: "b", rate: 2, capacity: 1, count: 1 },
  ], "one call for both task names");
  assert.deepEqual(ready.slice(0, 3), ["f1", "a1", "b1"]);
  await until(() => asked.length >= 2 && ready.length >= 4);
  assert.deepEqual(asked[1], [{ key: "a", rate: 10, capacity: 1, count: 2 }]);
  assert.deepEqual(ready, ["f1", "a1", "b1", "a2"]);
  await until(() => asked.length >= 3);
  assert.deepEqual(limiter.held(), ["a3"], "no token: waits for the next one");
  limiter.setRate("a", null);
  assert.deepEqual(ready, ["f1", "a1", "b1", "a2", "a3"], "removing the limit releases");
  assert.equal(limiter.size, 0);
  limiter.setRate("b", 1);
  limiter.submit("b", "b2");
  await until(() => asked.length >= 4);
  assert.deepEqual(limiter.drain(), ["b2"]);
  assert.equal(limiter.size, 0);
  assert.throws(() => limiter.setRate("c", -1), RangeError);
});

Deno.test("rate limiter: a new rate applies to the held items at once", async () => {
  const buckets = new LocalTokenBuckets();
  const ready: string[] = [];
  const limiter = new RateLimiter<string>({
    acquire: (requests) => Promise.resolve(buckets.acquire(requests)),
    onReady: (items) => ready.push(...items),
  });
  limiter.setRate("slow", 1 / 3600); // "1/h": the second item would wait an hour
  for (const x of ["s1", "s2", "s3"]) limiter.submit("slow", x);
  await new Promise((ok) => setTimeout(ok, 50));
  assert.deepEqual(ready, ["s1"]);
  limiter.setRate("slow", 100);
  await new Promise((ok) => setTimeout(ok, 200));
  assert.deepEqual(ready, ["s1", "s2", "s3"], "raising the limit does not wait out the old one");
  assert.deepEqual(limiter.drain(), []);
});

function fakeIo(failPublish: boolean) {
  const log: string[] = [];
  const backend = {
    store: (entries: readonly StoreEntry[]) => {
      log.push(...entries.map((e) => `store ${e.status}`));
      return Promise.resolve();
    },
  } as unknown as ResultBackend;
  const broker = {
    ack: (ds: readonly Delivery[]) => {
      log.push(...ds.map(() => "ack"));
      return Promise.resolve();
    },
    reject: (rs: readonly Rejection[]) => {
      log.push(...rs.map((r) => `reject ${r.reason}`));
      return Promise.resolve();
    },
  } as unknown as Broker;
  const publish = (m: Message) => {
    if (failPublish) return Promise.reject(new Error("broker down"));
    log.push(`publish retries=${m.headers.retries}`);
    return Promise.resolve();
  };
  return { log, io: { broker, backend, publish, origin: "test@host" } };
}

function dueRetry(acked: boolean) {
  const m = encodeTaskMessage({
    task: "t.x",
    id: "id1",
    args: [],
    kwargs: {},
    now: new Date(),
    origin: "gen1@host",
    replyTo: "r",
  });
  const delivery = {
    ...m,
    queue: "celery",
    deliveryTag: "tag",
    redelivered: false,
    exchange: "",
    routingKey: "celery",
  };
  const outcome: RunOutcome = {
    seq: 1,
    ok: false,
    meta: "{}",
    runtime: 1,
    retry: {
      retries: 1,
      eta: new Date(),
      when: "in 0s",
      args: [],
      kwargs: {},
      embed: EMPTY_EMBED,
    },
  };
  return { delivery, req: decodeTaskHeaders(m), acked, outcome };
}

Deno.test("settleRetries stores RETRY, publishes, then acks; a failed publish fails and parks", async () => {
  const ok = fakeIo(false);
  await settleRetries([dueRetry(false)], ok.io);
  assert.deepEqual(ok.log, ["store RETRY", "publish retries=1", "ack"]);
  const early = fakeIo(false);
  await settleRetries([dueRetry(true)], early.io);
  assert.deepEqual(early.log, ["store RETRY", "publish retries=1"], "already acked");
  const bad = fakeIo(true);
  const parked: string[] = [];
  const lifecycle = new Lifecycle();
  lifecycle.subscribe((e) => e.type === "rejected" && parked.push(`${e.kind} ${e.taskId}`));
  await settleRetries([dueRetry(false)], { ...bad.io, lifecycle });
  assert.deepEqual(bad.log, [
    "store RETRY",
    "store FAILURE",
    "reject retry could not be published: broker down",
  ]);
  assert.deepEqual(parked, ["unsettled id1"], "the park announced (logged, counted) once");
  const badEarly = fakeIo(true);
  await settleRetries([dueRetry(true)], { ...badEarly.io, lifecycle });
  assert.deepEqual(parked, ["unsettled id1"], "an acknowledged delivery is not parked");
  const parkDown = fakeIo(true);
  parkDown.io.broker.reject = () => Promise.reject(new Error("park refused"));
  await assert.rejects(settleRetries([dueRetry(false)], { ...parkDown.io, lifecycle }));
  assert.deepEqual(parked, ["unsettled id1"], "a park not written is not announced");
});
