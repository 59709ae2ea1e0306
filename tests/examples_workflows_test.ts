/** The workflow example runs with the permissions the README gives it and prints what it says. */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { createVhost, RABBITMQ_URL } from "./helpers/rabbitmq.ts";
import { WITHOUT_RABBITMQ, WITHOUT_REDIS } from "./helpers/services.ts";

/** Run examples/workflows.ts with these extra flags and environment; its output, once it succeeded. */
async function runWorkflows(flags: string[], env: Record<string, string> = {}): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read=.", "--allow-env", ...flags, "examples/workflows.ts"],
    cwd: new URL("../", import.meta.url).pathname,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, `${text}\n${new TextDecoder().decode(out.stderr)}`);
  return text;
}

Deno.test("examples: workflows (chain, group, chord, map/starmap/chunks) on the KV store", async () => {
  const text = await runWorkflows([]);
  assert.match(text, /mul\(4\), show\)\s+= 24 apples/);
  assert.match(text, /group\(add\(2, 2\), show\(5\)\)\s+= \[4, 5 pears\]/);
  assert.match(text, /chord\(\[add × 3\], tsum\)\s+= 12/);
  assert.match(text, /group\(add, add\), tsum\)\s+= 34/);
  assert.match(text, /tsum\.map\(\[\[1, 2\], \[3, 4\]\]\)\s+= 3,7/);
  assert.match(text, /add\.chunks\(\[\.\.\.3\], 2\)\s+= \[\[2,4\],\[6\]\]/);
  assert.match(text, /failing member\s+→ celery\.exceptions\.ChordError/);
  assert.match(text, /restored group\s+= \[6,20\]/);
  assert.equal(text.match(/finished: /g)?.length, 2);
  assert.match(text, /#ops: flow\.fail\(no apples\) raised ValueError: no apples/, "in-process");
  assert.match(text, /one-argument errback\s+= noted [0-9a-f-]{36}/);
  // flow.fail, and the chord's failing member.
  assert.match(text, /"failed":2/);
});

Deno.test({
  name: "examples: workflows run on the broker CELERY_BROKER_URL names, as the header says",
  ignore: WITHOUT_REDIS,
}, async () => {
  // The example configured kv://:memory: over CELERY_BROKER_URL: it ran on
  // the KV store (results on Redis) and no message went through Redis.
  const prefix = uniquePrefix("ex-workflows");
  const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;
  const redis = new Redis(REDIS_URL);
  try {
    const text = await runWorkflows([`--allow-net=${new URL(REDIS_URL).host}`], {
      CELERY_BROKER_URL: url,
      CELERY_RESULT_BACKEND: url,
    });
    assert.match(text, /mul\(4\), show\)\s+= 24 apples/);
    assert.match(text, /restored group\s+= \[6,20\]/);
    assert.equal(await redis.exists(`${prefix}_kombu.binding.celery`), 1, "the queue on Redis");
  } finally {
    redis.disconnect();
    await deleteKeys(prefix);
  }
});

Deno.test({
  name: "examples: workflows with CELERY_BROKER_URL alone say to set CELERY_RESULT_BACKEND too",
  ignore: WITHOUT_REDIS,
}, async () => {
  // Before: an uncaught NoResultBackendError and a stack trace at the first chain's get().
  const prefix = uniquePrefix("ex-workflows-nobackend");
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read=.",
        "--allow-env",
        `--allow-net=${new URL(REDIS_URL).host}`,
        "examples/workflows.ts",
      ],
      cwd: new URL("../", import.meta.url).pathname,
      env: { CELERY_BROKER_URL: `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2, err);
    assert.match(err, /set CELERY_RESULT_BACKEND too/);
    assert.doesNotMatch(err, /NoResultBackendError|\n\s+at /, "no stack trace");
  } finally {
    await deleteKeys(prefix);
  }
});

Deno.test({
  name:
    "examples: workflows on RabbitMQ with rpc:// results skip what rpc:// cannot do, and say so",
  ignore: WITHOUT_RABBITMQ,
}, async () => {
  // With CELERY_RESULT_BACKEND=rpc:// (RabbitMQ's usual pairing, and what the
  // README's RabbitMQ examples use) the example died at its first chord with
  // an uncaught ChordUnsupportedError and a stack trace, exit 1.
  const vhost = await createVhost("ex-workflows-rpc");
  try {
    const text = await runWorkflows([`--allow-net=${new URL(RABBITMQ_URL).host}`], {
      CELERY_BROKER_URL: vhost.url(),
      CELERY_RESULT_BACKEND: "rpc://",
    });
    assert.match(text, /mul\(4\), show\)\s+= 24 apples/);
    assert.match(text, /group\(add\(2, 2\), show\(5\)\)\s+= \[4, 5 pears\]/);
    assert.match(text, /add\.chunks\(\[\.\.\.3\], 2\)\s+= \[\[2,4\],\[6\]\]/);
    assert.match(
      text,
      /chords and saved groups\s+→ skipped: the rpc:\/\/ result backend has neither \(as in Celery\); run with CELERY_RESULT_BACKEND=redis:\/\/…\n/,
    );
    assert.doesNotMatch(text, /chord\(\[add × 3\]/);
    assert.match(text, /"failed":0/);
  } finally {
    await vhost.remove();
  }
});
