/**
 * `link_error` errbacks across Celeriac and Python Celery 5.2.6 workers,
 * on Redis and on RabbitMQ (Redis result backend). Celery calls an errback
 * whose task it defines unbound with two or more parameters in-process, as
 * `(request, exc, traceback, *sig.args)`, after storing the FAILURE, and
 * sends every other errback as a task with the failed task's id. A
 * Celeriac worker does the same with the errbacks of its tasks, and with
 * those of a chord body whose header member fails (Celery's
 * `chord_error_from_stack`: the body's id, the `ChordError`, no traceback;
 * those it sends have the body as parent and root).
 */

import assert from "node:assert/strict";
import { Celery, chord } from "../mod.ts";
import type { SignatureDict } from "../protocol.ts";
import { celeriacWorker, celeryWorker, type Proc } from "./helpers/procs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import {
  deleteKeys,
  deleteResults,
  rawRedis,
  REDIS_URL,
  uniquePrefix,
  waitForList,
} from "./helpers/redis.ts";
import { WITHOUT_CELERY, WITHOUT_RABBITMQ } from "./helpers/services.ts";
import { until } from "./helpers/waits.ts";

const prefix = uniquePrefix("interop-errbacks");
const amqpIgnore = WITHOUT_CELERY || WITHOUT_RABBITMQ;
const vhost = amqpIgnore ? null : await createVhost("interop-errbacks");
const setups = [
  {
    label: "Redis",
    broker: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`,
    py: { CELERY_BROKER_URL: REDIS_URL, INTEROP_KEYPREFIX: prefix },
    ignore: WITHOUT_CELERY,
  },
  {
    label: "RabbitMQ",
    broker: `amqp://guest:guest@127.0.0.1:5672/${vhost?.name}`,
    py: {
      CELERY_BROKER_URL: `amqp://guest:guest@127.0.0.1:5672/${vhost?.name}`,
      INTEROP_KEYPREFIX: "",
    },
    ignore: amqpIgnore,
  },
];
const ids: string[] = [];

/**
 * What the errbacks recorded (tests/apps/errback_app.ts, tests/interop/pytasks.py), sorted,
 * once the sent ones are found to carry one group id, as Celery sends a failure's errbacks
 * (`group(errbacks).apply_async(...)`); that id is then left out.
 */
async function records(marker: string, count: number): Promise<Record<string, unknown>[]> {
  const got = (await waitForList(marker, count, 30_000)).map((r) => JSON.parse(r));
  const sent = got.filter((g) => g.style === "new");
  if (sent.length) {
    const groups = new Set(sent.map((g) => g.group));
    assert.equal(groups.size, 1, `one group for the sent errbacks: ${JSON.stringify(got)}`);
    assert.match(String([...groups][0]), /^[0-9a-f-]{36}$/);
  }
  for (const g of got) delete g.group;
  return sorted(got);
}

function sorted(rs: Record<string, unknown>[]): Record<string, unknown>[] {
  return rs.sort((a, b) => `${a.by}${a.style}`.localeCompare(`${b.by}${b.style}`));
}

/** Each side's queue option: Python's worker's and Celeriac's. */
interface OnQueue {
  py: { queue: string };
  ts: { queue: string };
}

/**
 * Run `fn` with a client and two workers on `setup`, each on its own queue
 * (`q-<name>-py-<tag>`, `q-<name>-ts-<tag>`): Python Celery's (solo pool)
 * and Celeriac's (tests/apps/errback_app.ts), both storing in Redis and
 * recording their errbacks' calls there; stops both and closes the client.
 */
async function withWorkers(
  setup: (typeof setups)[number],
  name: string,
  fn: (t: { app: Celery; tag: string; onQueue: OnQueue }) => Promise<void>,
): Promise<void> {
  const tag = crypto.randomUUID().slice(0, 8);
  const pyQueue = `q-${name}-py-${tag}`;
  const tsQueue = `q-${name}-ts-${tag}`;
  const env = {
    ...setup.py,
    CELERY_RESULT_BACKEND: REDIS_URL,
    INTEROP_QUEUE: pyQueue,
    INTEROP_MARKER_REDIS: REDIS_URL,
  };
  const workers: Proc[] = [];
  const app = new Celery({ broker: setup.broker, backend: REDIS_URL });
  try {
    workers.push(await celeryWorker(["-P", "solo", "-Q", pyQueue], env));
    workers.push(
      await celeriacWorker(
        [
          "--app",
          "./tests/apps/errback_app.ts",
          "--broker",
          setup.broker,
          "--backend",
          REDIS_URL,
          "-Q",
          tsQueue,
        ],
        { CELERY_DEFAULT_QUEUE: tsQueue, INTEROP_MARKER_REDIS: REDIS_URL },
      ),
    );
    await fn({ app, tag, onQueue: { py: { queue: pyQueue }, ts: { queue: tsQueue } } });
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await app.close();
  }
}

for (const setup of setups) {
  Deno.test({
    name:
      `errback interop on ${setup.label}: each worker calls its old-style errbacks in-process, ` +
      "after storing the FAILURE, and sends the others with the failed task's id",
    ignore: setup.ignore,
  }, async () => {
    await withWorkers(setup, "eb", async ({ app, tag, onQueue }) => {
      for (const failing of ["ts", "py"] as const) {
        const marker = `${prefix}marker-${tag}-${failing}`;
        const sig = app.signature(
          failing === "ts" ? "eb.fail" : "py.fail",
          ["boom"],
          {},
          onQueue[failing],
        )
          .onError(app.signature("eb.old", [marker], {}, onQueue.ts))
          .onError(app.signature("eb.new", [], { marker_key: marker }, onQueue.ts))
          .onError(app.signature("py.errback_old", [marker], {}, onQueue.py))
          .onError(app.signature("py.errback_new", [], { marker_key: marker }, onQueue.py));
        const r = await sig.applyAsync();
        ids.push(r.id);
        await assert.rejects(r.get({ timeout: 30_000 }), /boom/);
        // Three of four: the other old-style errback is sent to a worker that calls it with the
        // task id only, and fails there with a TypeError, as Celery does with one it does not define.
        const got = await records(marker, 3);
        const old = {
          by: failing,
          style: "old",
          failed: r.id,
          exc: "ValueError: boom",
          traceback: true,
          stored: "FAILURE",
          // The failed task's parent, root and group ids: sent by a client, its own id as root.
          ids: [null, r.id, null],
          ...(failing === "ts" ? { name: "eb.fail", args: ["boom"] } : {}),
        };
        const sent = { failed: r.id, parent: r.id, root: r.id };
        const want = [
          { by: "py", style: "new", ...sent },
          old,
          { by: "ts", style: "new", ...sent },
        ];
        assert.deepEqual(got, sorted(want), `${failing} task failing`);
      }
    });
  });
}

for (const setup of setups) {
  Deno.test({
    name: `errback interop on ${setup.label}: a chord whose header member fails, or whose ` +
      "body cannot be sent: the body's old-style errbacks of the joining worker are called " +
      "in-process with the ChordError and no traceback, the others sent with the body's id",
    ignore: setup.ignore,
  }, async () => {
    await withWorkers(setup, "ebc", async ({ app, tag, onQueue }) => {
      // A failed member; a body that cannot be sent (Celery's "Callback error").
      const cases = [
        { kind: "failed", failing: true, options: {} },
        { kind: "unsendable", failing: false, options: { serializer: "nope" } },
      ];
      for (const c of cases) {
        // Every task of the chord on one worker: Python's (tasks.*) or Celeriac's (eb.*).
        for (const side of ["ts", "py"] as const) {
          const marker = `${prefix}marker-chord-${tag}-${c.kind}-${side}`;
          const name = (t: string) => side === "ts" ? `eb.${t}` : `tasks.${t}`;
          const s = (t: string, args: unknown[]) => app.signature(name(t), args, {}, onQueue[side]);
          const body = s("tsum", [])
            .onError(app.signature("eb.old", [marker], {}, onQueue.ts))
            .onError(app.signature("eb.new", [], { marker_key: marker }, onQueue.ts))
            .onError(app.signature("py.errback_old", [marker], {}, onQueue.py))
            .onError(app.signature("py.errback_new", [], { marker_key: marker }, onQueue.py));
          const last = c.failing ? s("fail", ["h"]) : s("add", [2, 2]);
          const sig = chord([s("add", [1, 1]), last], body).toDict();
          // Options the client refuses (as a Python-built chord may carry): applied as a dict.
          const b = (sig.kwargs as { body: SignatureDict }).body;
          b.options = { ...b.options, ...c.options };
          const tree = await app.applyCanvas(sig);
          const r = app.asyncResult(tree.id);
          ids.push(r.id);
          const err = await r.get({ timeout: 30_000 }).then(() => null, (e) => e);
          assert.equal(err?.excType, "ChordError", `chord ${c.kind} on ${side}`);
          const failed = tree.parent!.members![1].id;
          // The other worker's old-style errback is sent with the body's id and fails there with
          // a TypeError, as Celery does with one it does not define.
          const got = await records(marker, 3);
          const old = got.find((g) => g.style === "old")!;
          // An unsendable body: each side's own error (Python's SerializerNotInstalled).
          assert.match(
            String(old.exc),
            c.failing
              ? new RegExp(`^ChordError: Dependency ${failed} raised ValueError\\('h'\\)$`)
              : /^ChordError: Callback error: \w+\('.*nope.*'\)$/,
          );
          old.exc = "ChordError";
          // Sent with the body as parent and root (Celery's fake request has no root of its own).
          const sent = { failed: r.id, parent: r.id, root: r.id };
          const want = [
            { by: "py", style: "new", ...sent },
            {
              by: side,
              style: "old",
              failed: r.id,
              exc: "ChordError",
              traceback: false,
              // Celery calls it before storing the body's FAILURE; Celeriac after, as for any task.
              stored: side === "ts" ? "FAILURE" : "PENDING",
              // Celery's fake request, made from the body's signature, has no parent, root or
              // group.
              ids: [null, null, null],
              ...(side === "ts" ? { name: "eb.tsum", args: [] } : {}),
            },
            { by: "ts", style: "new", ...sent },
          ];
          assert.deepEqual(got, sorted(want), `chord ${c.kind} on ${side}`);
        }
      }
    });
  });
}

for (const setup of setups) {
  Deno.test({
    name: `errback interop on ${setup.label}: celery.chord_unlock with a failed member, or a ` +
      "body it cannot send, calls or sends the body's errbacks as the chord join does",
    ignore: setup.ignore,
  }, async () => {
    await withWorkers(setup, "ebu", async ({ app, tag, onQueue }) => {
      // A failed member; a body that cannot be sent (Celery's "Callback error").
      const cases = [
        { kind: "failed", failing: true, options: {}, exc: /^ChordError: .*ValueError\('u'\)$/ },
        {
          kind: "unsendable",
          failing: false,
          options: { serializer: "nope" },
          exc: /^ChordError: Callback error: \w+\('.*nope.*'\)$/,
        },
      ];
      for (const c of cases) {
        for (const side of ["ts", "py"] as const) {
          const marker = `${prefix}marker-unlock-${tag}-${c.kind}-${side}`;
          const name = (t: string) => side === "ts" ? `eb.${t}` : `tasks.${t}`;
          const s = (t: string, args: unknown[]) => app.signature(name(t), args, {}, onQueue[side]);
          const members = [
            await s("add", [1, 1]).applyAsync(),
            await (c.failing ? s("fail", ["u"]) : s("add", [2, 2])).applyAsync(),
          ];
          ids.push(...members.map((m) => m.id));
          await members[1].get({ timeout: 30_000 }).catch(() => null);
          const bodyId = crypto.randomUUID();
          ids.push(bodyId);
          const body = s("tsum", [])
            .onError(app.signature("eb.old", [marker], {}, onQueue.ts))
            .onError(app.signature("eb.new", [], { marker_key: marker }, onQueue.ts))
            .onError(app.signature("py.errback_old", [marker], {}, onQueue.py))
            .onError(app.signature("py.errback_new", [], { marker_key: marker }, onQueue.py))
            .toDict();
          // What Celery's fallback_chord_unlock sends for a backend without native chord joins.
          await app.sendTask("celery.chord_unlock", [crypto.randomUUID(), {
            ...body,
            // Ids a body frozen in a workflow carries (Celery's chord freezes it with its root).
            options: {
              ...body.options,
              ...c.options,
              task_id: bodyId,
              root_id: crypto.randomUUID(),
              parent_id: crypto.randomUUID(),
              group_id: crypto.randomUUID(),
            },
          }], {
            kwargs: { interval: 0.2, result: members.map((m) => [[m.id, null], null]) },
            queue: onQueue[side].queue,
          });
          const got = await records(marker, 3);
          const old = got.find((r) => r.style === "old")!;
          // A failed member: Celery 5.2.6 with a natively joining backend says "ChordError:
          // ValueError('u')"; Celeriac (as Celery with another backend) names the member:
          // "Dependency <id> raised ValueError('u')". An unsendable body: each side's own error.
          assert.match(String(old.exc), c.exc);
          old.exc = "ChordError";
          const sent = { failed: bodyId, parent: bodyId, root: bodyId };
          const want = [{ by: "py", style: "new", ...sent }, {
            by: side,
            style: "old",
            failed: bodyId,
            exc: "ChordError",
            traceback: false,
            stored: side === "ts" ? "FAILURE" : "PENDING",
            // Celery's fake request takes no ids from the body's options.
            ids: [null, null, null],
            ...(side === "ts" ? { name: "eb.tsum", args: [] } : {}),
          }, { by: "ts", style: "new", ...sent }];
          assert.deepEqual(got, sorted(want), `chord_unlock, ${c.kind}, on ${side}`);
          const err = await app.asyncResult(bodyId).get({ timeout: 30_000 }).then(
            () => null,
            (e) => e,
          );
          assert.equal(err?.excType, "ChordError");
        }
      }
    });
  });
}

for (const setup of setups) {
  Deno.test({
    name: `errback interop on ${setup.label}: a failed chord's old-style errback that throws ` +
      "becomes the body's FAILURE, and no other errback is called or sent",
    ignore: setup.ignore,
  }, async () => {
    await withWorkers(setup, "ebr", async ({ app, tag, onQueue }) => {
      const redis = await rawRedis();
      try {
        for (const side of ["ts", "py"] as const) {
          const marker = `${prefix}marker-raise-${tag}-${side}`;
          const name = (t: string) => side === "ts" ? `eb.${t}` : `tasks.${t}`;
          const s = (t: string, args: unknown[]) => app.signature(name(t), args, {}, onQueue[side]);
          const raiser = side === "ts" ? "eb.raiser" : "py.errback_raise";
          // The one-argument errbacks come first: Celery sends them only after its loop ends.
          const body = s("tsum", [])
            .onError(app.signature("eb.new", [], { marker_key: marker }, onQueue.ts))
            .onError(app.signature("py.errback_new", [], { marker_key: marker }, onQueue.py))
            .onError(app.signature(raiser, [marker], {}, onQueue[side]))
            .onError(app.signature("eb.old", [marker], {}, onQueue.ts))
            .onError(app.signature("py.errback_old", [marker], {}, onQueue.py));
          const r = await chord([s("add", [1, 1]), s("fail", ["h"])], body).applyAsync();
          ids.push(r.id);
          const stored = async () =>
            JSON.parse(await redis.get(`celery-task-meta-${r.id}`) ?? "null");
          await until(
            `the body's FAILURE from the errback (${side})`,
            async () => (await stored())?.result?.exc_type === "RuntimeError",
          );
          const meta = await stored();
          assert.deepEqual(meta.result.exc_message, ["errback broke"]);
          assert.match(meta.traceback, /errback broke/);
          assert.deepEqual(await records(marker, 1), [{ by: side, style: "raiser", failed: r.id }]);
          // Nothing after it: the errbacks sent after a join reach their worker within this wait.
          await new Promise((ok) => setTimeout(ok, 1_500));
          assert.equal(await redis.llen(marker), 1, `chord on ${side}: only the raiser ran`);
        }
      } finally {
        await redis.quit();
      }
    });
  });
}

Deno.test({ name: "errback interop: clean up", ignore: WITHOUT_CELERY }, async () => {
  await deleteKeys(prefix);
  await deleteResults(ids);
  await vhost?.remove();
});
