/**
 * The same canvases, built with Celery 5.2.6's API, run twice: with every
 * task on Python workers, and with half of them (queue B) on a Celeriac
 * worker; the states and results of every node of each result tree, and
 * of its links and errbacks, must be the same. Chains (a failing step, a
 * link on a step, `.si`), groups (a failing member, `group.link()`,
 * `link_error`), chords (a failing header member, body errbacks and links,
 * a chord in a chord, a chord of chains, nested in a chain), `replace`
 * (by a task, by a group, in a chord header) and a linked chain holding a
 * group of one (unrolled to its member), on Redis and on RabbitMQ with
 * the Redis result backend (tests/interop/pymixed.py).
 */

import assert from "node:assert/strict";
import { pyJsonLoads } from "../protocol.ts";
import { celeriacWorker, celeryWorker, type Proc, runPython } from "./helpers/procs.ts";
import { createVhost } from "./helpers/rabbitmq.ts";
import { deleteKeys, deleteResults, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_CELERY, WITHOUT_RABBITMQ } from "./helpers/services.ts";

const prefix = uniquePrefix("interop-mixed");
const amqpIgnore = WITHOUT_CELERY || WITHOUT_RABBITMQ;
const vhost = amqpIgnore ? null : await createVhost("interop-mixed");
const AMQP = `amqp://guest:guest@127.0.0.1:5672/${vhost?.name}`;
const setups = [
  {
    label: "Redis",
    ts: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`,
    py: { CELERY_BROKER_URL: REDIS_URL, INTEROP_KEYPREFIX: prefix },
    ignore: WITHOUT_CELERY,
  },
  {
    label: "RabbitMQ",
    ts: AMQP,
    py: { CELERY_BROKER_URL: AMQP, INTEROP_KEYPREFIX: "" },
    ignore: amqpIgnore,
  },
];
const ids: string[] = [];

/** A run's canvases, with the ids a `tasks.who` link returned ("py:<id>", "ts:<id>") made equal. */
async function run(env: Record<string, string>): Promise<Record<string, unknown>> {
  const out = pyJsonLoads(await runPython("pymixed.py", [], env)) as {
    canvases: Record<string, unknown>;
    ids: string[];
  };
  ids.push(...out.ids);
  return JSON.parse(
    JSON.stringify(out.canvases).replace(/"(py|ts):[0-9a-f-]{36}"/g, '"who:<id>"'),
  );
}

for (const setup of setups) {
  Deno.test({
    name: `mixed canvases on ${setup.label}: a Celeriac worker on half the tasks ends every ` +
      "canvas as Python workers alone do",
    ignore: setup.ignore,
  }, async () => {
    const tag = crypto.randomUUID().slice(0, 8);
    const [qa, qpy, qts] = ["a", "pyb", "tsb"].map((q) => `q-mixed-${q}-${tag}`);
    const env = {
      ...setup.py,
      CELERY_RESULT_BACKEND: REDIS_URL,
      INTEROP_MARKER_REDIS: REDIS_URL,
    };
    const workers: Proc[] = [];
    try {
      for (const q of [qa, qpy]) {
        const args = ["-P", "solo", "-Q", q, "-n", `${q}@%h`];
        workers.push(await celeryWorker(args, { ...env, INTEROP_QUEUE: q }));
      }
      workers.push(
        await celeriacWorker(
          [
            "--app",
            "./tests/interop/tasks.ts",
            "--broker",
            setup.ts,
            "--backend",
            REDIS_URL,
            "-Q",
            qts,
            "-c",
            "2",
          ],
          { CELERY_DEFAULT_QUEUE: qts, INTEROP_MARKER_REDIS: REDIS_URL },
        ),
      );
      const [python, mixed] = await Promise.all([
        run({ ...env, QA: qa, QB: qpy }),
        run({ ...env, QA: qa, QB: qts }),
      ]);
      assert.ok(Object.keys(python).length >= 20, "canvases run");
      for (const [name, want] of Object.entries(python)) {
        // Every node ended (a stalled canvas would be PENDING in both runs).
        assert.doesNotMatch(JSON.stringify((want as { tree: unknown }).tree), /PENDING/, name);
        assert.deepEqual(mixed[name], want, name);
      }
      // A group of one in a linked chain runs as its member (Celery's maybe_unroll_group),
      // on whichever worker applies the link: 2 -> 3 -> 5 -> 10, not [5] * 2.
      const linksOf = (name: string) => (python[name] as { links: unknown }).links;
      assert.deepEqual(linksOf("link_chain_group_of_one"), { chain_one: ["SUCCESS", 10] });
      assert.deepEqual(linksOf("link_chain_ends_group_of_one"), { chain_end_one: ["SUCCESS", 5] });
      assert.deepEqual(linksOf("link_chain_starts_group_of_one"), {
        chain_start_one: ["SUCCESS", 6],
      });
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
}

Deno.test({ name: "mixed canvases: clean up", ignore: WITHOUT_CELERY }, async () => {
  await deleteKeys(prefix);
  await deleteResults(ids);
  await vhost?.remove();
});
