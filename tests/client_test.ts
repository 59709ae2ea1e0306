/** The client: configuration, what goes on the wire for each call option, errors. */

import assert from "node:assert/strict";
import {
  BrokerConnectionError,
  Celery,
  currentTask,
  NoResultBackendError,
  TimeoutError,
} from "../mod.ts";
import { encodeResultMeta } from "../src/protocol/result_meta.ts";
import { parsePyDate } from "../src/protocol/time.ts";
import { runEnvCase } from "./helpers/env_cases.ts";

Deno.test("client: creating an app and defining tasks opens no connection", async () => {
  const app = new Celery({ broker: "redis://:secret@127.0.0.1:1/0", backend: null });
  const add = app.task("t.add", (a: number, b: number) => a + b);
  assert.equal(add.name, "t.add");
  assert.equal(app.tasks.get("t.add"), add);
  assert.ok(Celery.isApp(app));
  assert.equal(Celery.isApp({}), false);
  await assert.rejects(add.delay(1, 2), (e: Error & { code?: string }) => {
    assert.ok(e instanceof BrokerConnectionError);
    assert.equal(e.code, "BROKER_CONNECTION");
    assert.match(e.message, /127\.0\.0\.1:1/);
    assert.doesNotMatch(e.message, /secret/);
    return true;
  });
  await app.close();
});

Deno.test("client: configuration comes from options, then environment, then defaults", async () => {
  assert.throws(() => new Celery({ resultExpires: -1 }), RangeError);
  // CELERY_* variables are set in a process of its own: files running in
  // parallel share this one's environment.
  await runEnvCase("client config");
});

Deno.test("client: bad task definitions are refused with messages that say what to change", () => {
  const app = new Celery({ broker: "kv://:memory:" });
  app.task("dup", () => 1);
  assert.throws(() => app.task("dup", () => 2), /already defined/);
  assert.throws(() => app.task("", () => 2), /non-empty name/);
  assert.throws(
    () => app.task("nohandler", {}, undefined as unknown as () => number),
    /needs a handler/,
  );
  // Ignored before: the handler called without its context, the task run without a time limit.
  const loose = (options: unknown) =>
    app.task(`t.${crypto.randomUUID()}`, options as never, () => 1);
  assert.throws(() => loose({ bnd: true }), /have no option "bnd" \(did you mean "bind"\?\)/);
  assert.throws(
    () => loose({ time_limit: 5 }),
    /options of task "t\..+" have no option "time_limit" \(did you mean "timeLimit"\?\): the options are bind, params, /,
  );
  assert.throws(
    () => loose({ timeLimit: "5" }),
    /timeLimit must be a number of seconds above 0, got "5"/,
  );
  assert.throws(() => loose({ maxRetries: -1 }), /maxRetries must be a whole number/);
  assert.throws(() => loose({ acksLate: "yes" }), /acksLate must be true or false, got "yes"/);
  assert.throws(() => loose({ queue: "" }), /queue must be a queue name, got ""/);
  // The rules a task's options share with a call's (SHARED_FIELD_RULES): the same words.
  assert.throws(
    () => loose({ priority: 256 }),
    /priority must be an integer from 0 to 255, got 256/,
  );
  assert.throws(() => loose({ serializer: "pickle" }), /serializer must be "json" or "msgpack"/);
  assert.throws(() => loose({ ignoreResult: 1 }), /ignoreResult must be true or false, got 1/);
  assert.throws(
    () => loose("math"),
    /must be an object, e\.g\. \{ bind: true, timeLimit: 30 \}; got "math"/,
  );
  loose({ timeLimit: undefined, maxRetries: null, retryBackoff: 2, onSuccess: () => {} });
  const annotated = new Celery({
    broker: "kv://:memory:",
    taskAnnotations: { "t.*": { rate_limit: "1/s" } as never, "t.a": { acks_late: true } as never },
  });
  assert.throws(
    () => annotated.task("t.a", () => 1),
    /taskAnnotations for "t\.a" have no option "acks_late" \(did you mean "acksLate"\?\)/,
  );
});

Deno.test("client: call options become the Celery headers and properties", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  try {
    const add = app.task("t.add", { queue: "math", priority: 3 }, (a: number, b: number) => a + b);
    const before = Date.now();
    const r = await add.applyAsync([2, 3], {
      countdown: 5,
      expires: 60,
      taskId: "11111111-2222-3333-4444-555555555555",
      headers: { "x-trace": "abc" },
      shadow: "shown",
      ignoreResult: true,
      timeLimit: 30,
      softTimeLimit: 20,
    });
    assert.equal(r.id, "11111111-2222-3333-4444-555555555555");
    const broker = await app.broker();
    assert.equal(await broker.queueDepth("celery"), 0, "the task's own queue is used");
    const [d] = await broker.take(["math"], { max: 1 });
    const h = d.headers;
    assert.equal(h.task, "t.add");
    assert.equal(h.id, r.id);
    assert.equal(h.root_id, r.id);
    assert.equal(h.parent_id, null);
    assert.equal(h.shadow, "shown");
    assert.equal(h.ignore_result, true);
    assert.deepEqual(h.timelimit, [30, 20]);
    assert.equal(h["x-trace"], "abc");
    assert.equal(h.argsrepr, "(2, 3)");
    assert.match(String(h.origin), /^gen\d+@/);
    const eta = parsePyDate(String(h.eta)).getTime();
    assert.ok(eta >= before + 5000 && eta <= Date.now() + 5000, "eta = now + countdown");
    assert.match(String(h.eta), /\+00:00$/);
    const expires = parsePyDate(String(h.expires)).getTime();
    assert.ok(expires >= before + 60_000 && expires <= Date.now() + 60_000);
    assert.equal(d.properties.priority, 3);
    assert.equal(d.properties.correlation_id, r.id);
    assert.equal(d.properties.reply_to, app.oid);
    assert.equal(d.properties.expiration, "60000");
    await broker.ack([d]);
  } finally {
    await app.close();
  }
});

Deno.test("client: msgpack and zlib are loaded on demand and round-trip", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  try {
    await app.sendTask("t.x", [2n ** 60n, "é"], {
      serializer: "msgpack",
      compression: "zlib",
      queue: "mp",
    });
    const broker = await app.broker();
    const [d] = await broker.take(["mp"], { max: 1 });
    assert.equal(d.contentType, "application/x-msgpack");
    assert.equal(d.headers.compression, "application/x-gzip");
    const { decodeTaskBody } = await import("../src/protocol/task_request.ts");
    assert.deepEqual(decodeTaskBody(d, String(d.headers.id)).args, [2n ** 60n, "é"]);
    await broker.ack([d]);
  } finally {
    await app.close();
  }
});

Deno.test("client: get() times out with a TimeoutError, or says no backend is configured", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  const none = new Celery({ broker: "kv://:memory:", backend: null });
  try {
    const r = await app.sendTask("nobody.runs.this", []);
    assert.equal(await r.state(), "PENDING");
    assert.equal(await r.ready(), false);
    const t0 = Date.now();
    await assert.rejects(
      r.get({ timeout: 200 }),
      (e: Error & { code?: string; taskId?: string }) => {
        assert.ok(e instanceof TimeoutError);
        assert.equal(e.code, "TIMEOUT");
        assert.equal(e.taskId, r.id);
        return true;
      },
    );
    assert.ok(Date.now() - t0 >= 190);
    const ctl = new AbortController();
    const waiting = r.get({ signal: ctl.signal });
    ctl.abort(new Error("caller gave up"));
    await assert.rejects(waiting, /caller gave up/);
    await assert.rejects(none.asyncResult("x").get(), NoResultBackendError);
  } finally {
    await app.close();
    await none.close();
  }
});

Deno.test("client: successful() and failed() as Celery's; get({ propagate }) says what to do instead", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  try {
    const backend = await app.resultBackend();
    const failure = { exc_type: "ValueError", exc_message: ["no"], exc_module: "builtins" };
    for (const [taskId, status, result] of [["ok", "SUCCESS", 5], ["ko", "FAILURE", failure]]) {
      await backend.store([
        {
          taskId: String(taskId),
          status: String(status),
          meta: encodeResultMeta({ taskId: String(taskId), status: String(status), result }),
        },
      ]);
    }
    const [ok, ko, pending] = ["ok", "ko", "none"].map((id) => app.asyncResult(id));
    assert.deepEqual(
      [await ok.successful(), await ko.successful(), await pending.successful()],
      [true, false, false],
    );
    assert.deepEqual([await ok.failed(), await ko.failed(), await pending.failed()], [
      false,
      true,
      false,
    ]);
    await assert.rejects(
      ko.get({ propagate: false } as never),
      /get\(\) has no option "propagate" \(Celery's get\(propagate=False\)\): .*TaskError; catch it, or .* error\(\)/,
    );
  } finally {
    await app.close();
  }
});

Deno.test("client: waiting for a result inside a task is refused; tasks sent there get parent ids", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  try {
    await currentTask.run({ id: "parent-1", rootId: "root-1" }, async () => {
      await assert.rejects(app.asyncResult("x").get(), (e: Error) => {
        assert.match(e.message, /Never wait for a result inside a task/);
        assert.equal(e.name, "RuntimeError", "as Celery's: stored as builtins.RuntimeError");
        return true;
      });
      await app.sendTask("child", [], { queue: "kids" });
    });
    const broker = await app.broker();
    const [d] = await broker.take(["kids"], { max: 1 });
    assert.equal(d.headers.parent_id, "parent-1");
    assert.equal(d.headers.root_id, "root-1");
    await broker.ack([d]);
  } finally {
    await app.close();
  }
});

Deno.test("client: an option name or type a plain-JavaScript caller got wrong is refused, naming the fix", () => {
  // Untyped callers (deno run --no-check, plain .js): the names were ignored and the
  // default used (a "brokr" typo sent tasks to the embedded KV store), and broker: 6379
  // failed with "broker.startsWith is not a function".
  const opts = (o: Record<string, unknown>) => o as never;
  assert.throws(
    () => new Celery(opts({ brokr: "redis://127.0.0.1:6379/0" })),
    (e: Error) =>
      e instanceof TypeError && /no option "brokr" \(did you mean "broker"\?\)/.test(e.message),
  );
  assert.throws(
    () => new Celery(opts({ broker_url: "redis://127.0.0.1:6379/0" })),
    /new Celery\(\) has no option "broker_url" \(did you mean "broker"\?\)/,
  );
  assert.throws(
    () => new Celery(opts({ broker: 6379 })),
    /option "broker" must be a string, got the number 6379 \(write the whole URL/,
  );
  const app = new Celery({ broker: "kv://:memory:" });
  assert.throws(
    () => app.configure(opts({ task_serializer: "json" })),
    /app\.configure\(\) has no option "task_serializer" \(did you mean "taskSerializer"\?\)/,
  );
  assert.throws(() => app.configure(opts({ visibilityTimeout: "600" })), /must be a number/);
  assert.equal(app.config.visibilityTimeout, 3600); // nothing applied
  app.configure({ backend: null, taskRoutes: [{ "t.*": "q" }], beatStore: undefined });
});

Deno.test("client: a call or get() option a plain-JavaScript caller got wrong is refused before anything is sent", async () => {
  // The names were ignored (countdwn: the task ran at once; routing_key: sent by the default
  // route), get(100) and get({ timout: 100 }) waited forever, get({ timeout: "10s" }) failed
  // with "Failed to execute 'AbortSignal.timeout'".
  const app = new Celery({ broker: "kv://:memory:" });
  try {
    const add = app.task("t.add", (a: number, b: number) => a + b);
    const opts = (o: Record<string, unknown>) => o as never;
    await assert.rejects(
      add.applyAsync([1, 2], opts({ countdwn: 5 })),
      (e: Error) =>
        e instanceof TypeError &&
        /"t\.add" have no option "countdwn" \(did you mean "countdown"\?\)/.test(e.message),
    );
    await assert.rejects(
      app.sendTask("t.add", [1, 2], opts({ routing_key: "math" })),
      /no option "routing_key" \(did you mean "routingKey"\?\)/,
    );
    await assert.rejects(add.delayMany([[1, 2]], opts({ ignore_result: true })), /"ignoreResult"/);
    await assert.rejects(
      app.sendMany([{ name: "t.add", args: [1, 2], options: opts({ priorty: 1 }) }]),
      /"priority"/,
    );
    const broker = await app.broker();
    assert.deepEqual(
      await broker.take(["celery"], { max: 10, signal: AbortSignal.timeout(200) }),
      [],
    ); // nothing was sent
    const r = await add.delay(1, 2);
    await assert.rejects(
      r.get(100 as never),
      /get\(\) takes an options object with the timeout in milliseconds: for 100 s, as Celery's get\(timeout=100\), write get\(\{ timeout: 100_000 \}\)/,
    );
    await assert.rejects(
      r.get(opts({ timout: 100 })),
      /no option "timout" \(did you mean "timeout"\?\)/,
    );
    await assert.rejects(
      r.get(opts({ timeout: "10s" })),
      /timeout must be a number of milliseconds .*got "10s"/,
    );
    await assert.rejects(r.get({ timeout: 50 }), TimeoutError);
    assert.equal((await add.delayMany([[1, 2], [3, 4]], { countdown: 1 })).length, 2);
  } finally {
    await app.close();
  }
});

Deno.test("client: a call option of the wrong type or an impossible value is refused, naming it, before anything is sent", async () => {
  // countdown NaN / expires NaN / an invalid eta Date failed as "Invalid Date cannot be
  // encoded", countdown 10n as "Cannot mix BigInt and other types"; countdown "5" was sent
  // (coerced), queue 5 sent to a queue "5", priority "high" as NaN, an eta "tomorrow" verbatim.
  const app = new Celery({ broker: "kv://:memory:" });
  try {
    const add = app.task("t.add", (a: number, b: number) => a + b);
    const opts = (o: Record<string, unknown>) => o as never;
    const refused: [Record<string, unknown>, RegExp][] = [
      [{ countdown: NaN }, /countdown of "t\.add" must be a finite number of seconds, got NaN$/],
      [{ countdown: 10n }, /countdown .* got 10n/],
      [{ countdown: "5" }, /countdown .* got "5"/],
      [{ countdown: 1e12 }, /countdown of "t\.add" is 1000000000000 seconds, more than/],
      [{ expires: NaN }, /expires of "t\.add" must be a finite number of seconds, got NaN/],
      [
        { expires: "next week" },
        /expires .* must be a Date, seconds from now or an ISO 8601 string/,
      ],
      [
        { eta: new Date(NaN) },
        /eta of "t\.add" must be a Date or an ISO 8601 .*got an invalid Date/,
      ],
      [{ eta: "tomorrow" }, /eta .* got "tomorrow"/],
      [{ priority: "high" }, /priority of "t\.add" must be an integer from 0 to 255, got "high"/],
      [{ priority: 256 }, /priority of "t\.add" must be an integer from 0 to 255, got 256/],
      [{ timeLimit: -1 }, /timeLimit of "t\.add" must be a number of seconds >= 0/],
      [{ softTimeLimit: "30" }, /softTimeLimit .* got "30"/],
      [{ queue: 5 }, /queue of "t\.add" must be a string, got 5$/],
      [
        { serializer: "pickle" },
        /serializer of "t\.add" must be "json" or "msgpack", got "pickle"/,
      ],
      [{ compression: "brotli" }, /compression of "t\.add" must be "zlib"/],
      [{ routingKey: {} }, /routingKey of "t\.add" must be a string, got an object/],
      [{ taskId: 42 }, /task id of "t\.add" must be a non-empty string, got 42/],
      [{ ignoreResult: "yes" }, /ignoreResult of "t\.add" must be true or false, got "yes"/],
      [{ headers: [] }, /headers of "t\.add" must be an object, got an array/],
    ];
    for (const [o, message] of refused) {
      await assert.rejects(add.applyAsync([1, 2], opts(o)), message, Deno.inspect(o));
    }
    await assert.rejects(add.applyAsync([1, 2], opts({ priority: 256 })), RangeError);
    await assert.rejects(add.applyAsync([1, 2], opts({ priority: 2.5 })), TypeError);
    // The batch paths: one template for calls without times, one encode per call with them.
    // Two calls: a run of one is encoded alone, not from a template.
    await assert.rejects(add.delayMany([[1, 2], [3, 4]], opts({ priority: "high" })), /priority/);
    await assert.rejects(
      app.sendMany([{ name: "t.add", args: [1], options: opts({ countdown: NaN }) }]),
      /countdown/,
    );
    await assert.rejects(add.delayMany([[1, 2], [3, 4]], opts({ queue: 7 })), /queue of "t\.add"/);
    // Signatures: checked when the options are set or applied (they were dropped: the task ran
    // at once, on the default queue, at priority 0).
    assert.throws(() => add.s(1).set(opts({ countdown: "5" })), /countdown of "t\.add" .*got "5"/);
    assert.throws(() => add.s(1).set(opts({ queue: 5 })), /queue of "t\.add" must be a string/);
    assert.throws(
      () => add.s(1).set(opts({ countdwn: 5 })),
      /Unknown signature option "countdwn" \(did you mean "countdown"\?\)/,
    );
    await assert.rejects(
      add.s(1, 2).applyAsync([], opts({ priority: 300 })),
      /priority .* 0 to 255/,
    );
    const broker = await app.broker();
    assert.deepEqual(
      await broker.take(["celery", "5", "7"], { max: 10, signal: AbortSignal.timeout(200) }),
      [],
    ); // nothing was sent
    const past = new Date(Date.now() - 1000);
    for (
      const o of [{ countdown: -5 }, { eta: past }, { eta: "2030-01-01T12:00:00" }, { priority: 9 }]
    ) {
      assert.ok((await add.applyAsync([1, 2], o)).id, JSON.stringify(o)); // still accepted
    }
  } finally {
    await app.close();
  }
});

Deno.test("client: configure() is refused once the app has connected", async () => {
  const app = new Celery({ broker: "kv://:memory:" });
  app.configure({ defaultQueue: "other" });
  assert.equal(app.config.defaultQueue, "other");
  await app.broker();
  assert.throws(() => app.configure({ broker: "redis://x" }), /before the app connects/);
  await app.close();
});
