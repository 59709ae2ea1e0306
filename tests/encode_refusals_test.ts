/**
 * What JSON or msgpack cannot carry is refused with an EncodeError naming
 * where it is, instead of arriving changed (`() => 1` as null, an Error as {});
 * a thrown non-Error value is reported as itself, not "[object Object]".
 */

import assert from "node:assert/strict";
import { Celery, TaskError } from "../mod.ts";
import { exceptionInfo, tracebackText } from "../src/protocol/exceptions.ts";
import { EncodeError } from "../src/protocol/errors.ts";
import { pyJsonDumps } from "../src/protocol/json.ts";
import { loadCodecs } from "../src/protocol/codecs.ts";
import { msgpackEncode } from "../src/protocol/msgpack.ts";
import { withFirstContactWorker } from "./helpers/first_contact.ts";

function refused(path: string, reason: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof EncodeError, String(e));
    assert.equal(e.code, "ENCODE");
    assert.equal(e.path, path);
    assert.match(e.reason, reason);
    assert.ok(e.message.startsWith(path ? `Cannot encode ${path}: ` : e.reason), e.message);
    return true;
  };
}

Deno.test("encode: JSON refuses functions, symbols, undefined in arrays and Errors, with the path", () => {
  assert.throws(() => pyJsonDumps([() => 1]), refused("[0]", /a function cannot be sent/));
  assert.throws(() => pyJsonDumps({ a: { b: Symbol() } }), refused("a.b", /Symbol/));
  assert.throws(() => pyJsonDumps([1, [2, undefined]]), refused("[1][1]", /arrive as null/));
  assert.throws(
    () => pyJsonDumps({ e: new Error("e") }),
    refused("e", /Error object would arrive as \{\}/),
  );
  assert.throws(() => pyJsonDumps({ "a b": [/x/] }), refused('["a b"][0]', /RegExp/));
  assert.throws(() => pyJsonDumps([Promise.resolve(1)]), refused("[0]", /await it first/));
  assert.throws(() => pyJsonDumps({ m: new Map() }), refused("m", /Map cannot be encoded/));
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => pyJsonDumps({ c: cyclic }), refused("c.self", /cycle/));
  // What reads back the same stays allowed: an undefined property is left out,
  // a returned undefined is None.
  assert.equal(pyJsonDumps({ a: 1, b: undefined }), '{"a": 1}');
  assert.equal(pyJsonDumps(undefined), "null");
});

Deno.test("encode: msgpack refuses the same values with the same paths", async () => {
  await loadCodecs({ msgpack: true });
  assert.throws(() => msgpackEncode([{ f: () => 1 }]), refused("[0].f", /function/));
  assert.throws(() => msgpackEncode({ s: [Symbol()] }), refused("s[0]", /Symbol/));
  assert.throws(() => msgpackEncode([undefined]), refused("[0]", /arrive as null/));
  assert.throws(() => msgpackEncode({ err: new TypeError("t") }), refused("err", /TypeError/));
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  assert.throws(() => msgpackEncode(cyclic), refused("[0]", /cycle/));
});

Deno.test("encode: delay() names the argument: args[i], kwargs.name", async () => {
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const t = app.task("t.any", { params: ["when"] }, (..._a: unknown[]) => null);
  try {
    await assert.rejects(t.delay(1, () => 1), refused("args[1]", /function/));
    await assert.rejects(t.delay(Symbol()), refused("args[0]", /Symbol/));
    await assert.rejects(t.delay(1, undefined), refused("args[1]", /arrive as null/));
    await assert.rejects(t.delay(new Error("e")), refused("args[0]", /would arrive as \{\}/));
    await assert.rejects(
      t.applyAsync([], { kwargs: { when: { at: () => 0 } } }),
      refused("kwargs.when.at", /function/),
    );
    await assert.rejects(
      t.applyAsync([[1, () => 2]], { serializer: "msgpack" }),
      refused("args[0][1]", /function/),
    );
  } finally {
    await app.close();
  }
});

Deno.test("encode: a thrown non-Error is reported as itself", () => {
  assert.deepEqual(exceptionInfo({ code: 42 }), {
    exc_type: "Exception",
    exc_message: ['{"code": 42}'],
    exc_module: "builtins",
  });
  assert.deepEqual(exceptionInfo("boom").exc_message, ["boom"]);
  assert.deepEqual(exceptionInfo(42).exc_message, ["42"]);
  assert.deepEqual(exceptionInfo([1, "a"]).exc_message, ['[1, "a"]']);
  assert.deepEqual(exceptionInfo(new Map([["a", 1]])).exc_message, ["{}"]);
  assert.match(tracebackText({ code: 42 }), /\{"code": 42\}/);
});

Deno.test("encode: a worker stores an unencodable result and a thrown object as FAILURE", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-encode-test-" });
  const kv = `kv://${dir}/kv.sqlite`;
  try {
    await withFirstContactWorker({ broker: kv, backend: kv }, {}, async (client) => {
      const fn = client.remoteTask<[], unknown>("fc.returns_function");
      await assert.rejects((await fn.delay()).get({ timeout: 20_000 }), (e: TaskError) => {
        assert.ok(e instanceof TaskError);
        assert.equal(e.excType, "EncodeError");
        assert.match(String(e.excMessage), /Cannot encode result: a function cannot be sent/);
        return true;
      });
      const obj = client.remoteTask<[], unknown>("fc.throws_object");
      await assert.rejects((await obj.delay()).get({ timeout: 20_000 }), (e: TaskError) => {
        assert.equal(e.excType, "Exception");
        assert.match(String(e.excMessage), /\{"code": 42\}/);
        return true;
      });
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
