/**
 * The test cases that set process environment variables, each run in a
 * process of its own by {@link runEnvCase}: `deno test --parallel` runs the
 * test files as threads of one process, which share `Deno.env` and pass it
 * to every subprocess they spawn, so a variable set in one file would be
 * seen by the others, even between two statements with no await.
 */

import assert from "node:assert/strict";
import { Celery } from "../../mod.ts";
import { resolveConfig } from "../../protocol.ts";
import { scaleWorkerOptions } from "../../src/cli/scale_flags.ts";
import { runDenoScript } from "./procs.ts";

const CASES = {
  /** `new Celery()`: options, then CELERY_* variables, then defaults. */
  "client config": () => {
    for (const k of ["CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERY_DEFAULT_QUEUE"]) {
      Deno.env.delete(k);
    }
    const plain = new Celery();
    assert.equal(plain.config.broker, "kv://.celeriac/celeriac.sqlite");
    assert.equal(plain.config.backend, "kv://.celeriac/celeriac.sqlite");
    assert.equal(plain.config.defaultQueue, "celery");
    assert.equal(new Celery({ broker: "redis://h:6379/0" }).config.backend, null);
    Deno.env.set("CELERY_BROKER_URL", "redis://envhost:6379/2");
    Deno.env.set("CELERY_RESULT_BACKEND", "redis://envhost:6379/3");
    Deno.env.set("CELERY_DEFAULT_QUEUE", "envq");
    const env = new Celery();
    assert.equal(env.config.broker, "redis://envhost:6379/2");
    assert.equal(env.config.backend, "redis://envhost:6379/3");
    assert.equal(env.config.defaultQueue, "envq");
    const explicit = new Celery({ broker: "kv://:memory:", backend: null, defaultQueue: "q" });
    assert.equal(explicit.config.broker, "kv://:memory:");
    assert.equal(explicit.config.backend, null);
    assert.equal(explicit.config.defaultQueue, "q");
  },
  /** An empty CELERY_BROKER_URL / CELERY_RESULT_BACKEND counts as unset. */
  "empty broker and backend variables": () => {
    Deno.env.set("CELERY_BROKER_URL", "");
    Deno.env.set("CELERY_RESULT_BACKEND", "");
    const config = resolveConfig();
    assert.equal(config.broker, "kv://.celeriac/celeriac.sqlite");
    assert.equal(config.backend, "kv://.celeriac/celeriac.sqlite");
    Deno.env.set("CELERY_BROKER_URL", "redis://127.0.0.1:6379/3");
    assert.equal(resolveConfig().backend, null);
  },
  /** CELERY_BROKER_URL with kombu's pyamqp:// alias is the amqp:// broker; the backend keeps its URL. */
  "pyamqp broker variable": () => {
    Deno.env.set("CELERY_BROKER_URL", "pyamqp://guest:guest@mq:5672//");
    Deno.env.set("CELERY_RESULT_BACKEND", "rpc://");
    const config = new Celery().config;
    assert.equal(config.broker, "amqp://guest:guest@mq:5672//");
    assert.equal(config.backend, "rpc://guest:guest@mq:5672//");
  },
  /** A connection error says where its URL came from: the variable, or the app's option. */
  "connection error names its URL's source": async () => {
    Deno.env.set("CELERY_BROKER_URL", "redis://127.0.0.1:1/0");
    Deno.env.delete("CELERY_RESULT_BACKEND");
    const fromEnv = new Celery();
    await assert.rejects(fromEnv.task("t.noop", () => 1).delay(), (e: Error) => {
      assert.match(e.message, /nothing listens on 127\.0\.0\.1:1.*\(set by CELERY_BROKER_URL\)$/);
      return true;
    });
    await fromEnv.close();
    const fromOption = new Celery({ broker: "redis://127.0.0.1:1/0" });
    await assert.rejects(fromOption.task("t.noop", () => 1).delay(), (e: Error) => {
      assert.match(e.message, /\(set by the app's broker option \(new Celery\(\{ broker \}\)/);
      assert.doesNotMatch(e.message, /CELERY_BROKER_URL/);
      return true;
    });
    await fromOption.close();
  },
  /** AUTOSCALE_KEEPALIVE sets `--autoscale`'s keep-alive; the flag wins. */
  "autoscale keepalive": () => {
    Deno.env.set("AUTOSCALE_KEEPALIVE", "7");
    assert.deepEqual(scaleWorkerOptions({ autoscale: "2" }).autoscale, {
      max: 2,
      min: 0,
      keepalive: 7,
    });
    assert.equal(
      scaleWorkerOptions({ autoscale: "2", "autoscale-keepalive": "3" }).autoscale?.keepalive,
      3,
      "the flag wins",
    );
    Deno.env.set("AUTOSCALE_KEEPALIVE", "soon");
    assert.throws(
      () => scaleWorkerOptions({ autoscale: "2" }),
      /AUTOSCALE_KEEPALIVE needs a number of seconds > 0, got "soon"/,
    );
  },
};

/** A case's name. */
export type EnvCase = keyof typeof CASES;

/**
 * Run a case in a child process, whose environment changes are its own;
 * throws with its output when it fails.
 */
export async function runEnvCase(name: EnvCase): Promise<void> {
  await runDenoScript(new URL(import.meta.url).pathname, [name]);
}

if (import.meta.main) {
  const name = Deno.args[0];
  if (!(name in CASES)) throw new Error(`no env case "${name}": ${Object.keys(CASES).join(", ")}`);
  await CASES[name as EnvCase]();
}
