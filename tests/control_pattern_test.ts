/**
 * A remote-control request's `pattern` (kombu's glob and pcre matchers)
 * cannot hold a worker: a glob is matched as Python's `fnmatch.fnmatchcase`
 * without regular expressions (a run of `*` ending in a mismatch built a
 * RegExp that backtracked for good), a pcre pattern runs on V8's linear-time
 * engine (the worker's default V8 flags), and a pattern longer than
 * MAX_PATTERN_LENGTH or one that engine cannot run (back-references,
 * lookarounds, a large `{m,n}`) is answered with a ControlPatternError. The fnmatch table below was computed once with
 * `/usr/bin/python3` (3.11) `fnmatch.fnmatchcase(name, pattern)`.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import {
  addressedTo,
  ControlPatternError,
  decodeControlRequest,
  encodeControlRequest,
  LamportClock,
  MAX_PATTERN_LENGTH,
  PIDBOX_EXCHANGE,
} from "../protocol.ts";
import { call } from "../src/client/replies.ts";
import { celeriacWorker } from "./helpers/procs.ts";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./helpers/redis.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const NAMES = [
  "celery@worker-host-01.example.com",
  "celeriac@host",
  "a-b",
  "x]y",
  "w1@r44",
  "a\nb",
  "ü@h",
  "-",
  "!",
  "[x",
  "a*b",
];
/** Each glob, then fnmatchcase's answer for each of NAMES in order (1: matches). */
const TABLE: [string, string][] = [
  ["celery@*", "10000000000"],
  ["*", "11111111111"],
  ["**", "11111111111"],
  ["?", "00000001100"],
  ["celer?@*", "10000000000"],
  ["*.example.com", "10000000000"],
  ["*@*host*", "11000000000"],
  ["celery@worker-host-0[0-9].example.com", "10000000000"],
  ["celery@worker-host-0[!1].example.com", "00000000000"],
  ["[!c]*", "00111111111"],
  ["[]x]*", "00010000000"],
  ["x[]]y", "00010000000"],
  ["[a-]*", "00100101001"],
  ["[--0]*", "00000001000"],
  ["[z-a]-b", "00000000000"],
  ["[!z-a]-b", "00100000000"],
  ["[a-c-e]*", "11100101001"],
  ["[c-a-z]-b", "00000000000"],
  ["[x", "00000000010"],
  ["[!]*", "00000000000"],
  ["[", "00000000000"],
  ["*[", "00000000000"],
  ["a?b", "00100100001"],
  ["a*b", "00100100001"],
  ["a\\*b", "00000000000"],
  ["a[*]b", "00000000001"],
  ["*!", "00000000100"],
  ["**********************!", "00000000100"],
  ["**********************", "11111111111"],
  ["*e*e*e*e*e*e*e*e*e*e*x", "00000000000"],
  ["?????????????", "01000000000"],
  ["[!]", "00000000000"],
  ["[]]", "00000000000"],
  ["[!]]", "00000001100"],
  ["ü@?", "00000010000"],
  ["a[\\n]b", "00000000000"],
  ["*ost", "01000000000"],
  ["c*t", "01000000000"],
  ["*-*-*", "10000000000"],
  ["[!!]", "00000001000"],
  ["[!-]", "00000000100"],
  ["[a-c-]-b", "00100000000"],
  ["a?b*", "00100100001"],
];

function request(fields: Record<string, unknown>) {
  return decodeControlRequest({
    body: new TextEncoder().encode(
      JSON.stringify({ method: "ping", destination: null, ...fields }),
    ),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: {},
    properties: {},
  });
}

Deno.test("control pattern: a glob matches as Python's fnmatch.fnmatchcase, hostile runs of * included", () => {
  const wrong: string[] = [];
  for (const [pattern, bits] of TABLE) {
    NAMES.forEach((name, i) => {
      const got = addressedTo(request({ pattern, matcher: "glob" }), name);
      if (got !== (bits[i] === "1")) {
        wrong.push(`${JSON.stringify(pattern)} ~ ${JSON.stringify(name)}: ${got}`);
      }
    });
  }
  assert.deepEqual(wrong, []);
});

Deno.test("control pattern: one longer than MAX_PATTERN_LENGTH is refused with ControlPatternError, for either matcher", () => {
  for (const matcher of ["glob", "pcre"]) {
    assert.throws(
      () => addressedTo(request({ pattern: "*".repeat(MAX_PATTERN_LENGTH + 1), matcher }), "w@h"),
      (err) =>
        err instanceof ControlPatternError && err.code === "CONTROL_PATTERN" &&
        /at most 1024 characters, got 1025: name the nodes in `destination` instead/.test(
          err.message,
        ),
    );
    assert.equal(
      addressedTo(request({ pattern: "*".repeat(MAX_PATTERN_LENGTH), matcher }), "w@h"),
      matcher === "glob",
    );
  }
});

const prefix = uniquePrefix("ctl-pattern");
const url = `${REDIS_URL}?global_keyprefix=${encodeURIComponent(prefix)}`;

Deno.test({
  name:
    "control pattern on redis: a worker sent hostile glob and pcre patterns still answers a ping, and refuses a back-reference or a large {m,n} with an error reply naming the rewrite",
  ignore: WITHOUT_REDIS,
}, async () => {
  const id = crypto.randomUUID().slice(0, 8);
  // A long node name: the backtracking that held the worker grows with it.
  const node = `celery@worker-host-01.${id}.example.com`;
  const worker = await celeriacWorker([
    ...["--app", "./tests/apps/worker_app.ts", "-b", url, "--backend", url],
    ...["-Q", `ctl-pattern-${id}`, "-c", "1", "-n", node, "--without-heartbeat"],
  ]);
  const app = new Celery({ broker: url, backend: url });
  try {
    const broker = await app.broker();
    const clock = new LamportClock();
    for (
      const [pattern, matcher] of [
        [`${"*".repeat(22)}!`, "glob"],
        [`${"(.*)*".repeat(10)}$x`, "pcre"],
      ]
    ) {
      const cast = { method: "ping", arguments: {}, destination: null, pattern, matcher };
      await broker.broadcast(
        PIDBOX_EXCHANGE,
        encodeControlRequest(cast, { clock: clock.forward(), expires: 0 }),
      );
    }
    const pong = await call(broker, clock, id, {
      method: "ping",
      arguments: {},
      destination: [node],
    }, { timeout: 20 });
    assert.deepEqual(pong, [{ [node]: { ok: "pong" } }]);
    const refused = await call(broker, clock, id, {
      method: "ping",
      arguments: {},
      destination: null,
      pattern: `${"(.*)*".repeat(10)}\\1x`,
      matcher: "pcre",
    }, { timeout: 20, limit: 1 });
    assert.equal(refused.length, 1);
    assert.match(
      String((refused[0][node] as { error: string }).error),
      /^ControlPatternError\('A remote-control request's pcre pattern cannot be matched in linear time/,
    );
    // V8's linear engine also refuses a large {m,n} bound; the error says so
    // and names the rewrite, which matches.
    const bounded = await call(broker, clock, id, {
      method: "ping",
      arguments: {},
      destination: null,
      pattern: "[a-z]{1,20}@.*",
      matcher: "pcre",
    }, { timeout: 20, limit: 1 });
    assert.match(
      String((bounded[0][node] as { error: string }).error),
      /lookarounds and \{m,n\} repeats with a large bound such as \.\{1,32\} are refused\): use \+ or \* instead/,
    );
    const rewritten = await call(broker, clock, id, {
      method: "ping",
      arguments: {},
      destination: null,
      pattern: "[a-z]+@.*",
      matcher: "pcre",
    }, { timeout: 20, limit: 1 });
    assert.deepEqual(rewritten, [{ [node]: { ok: "pong" } }]);
  } finally {
    await app.close();
    await worker.stop();
    await deleteKeys(prefix);
  }
});
