/**
 * The app's taskSerializer and taskCompression are checked when the app is
 * made (or configured), naming the setting: before, `new Celery({
 * taskSerializer: "pickle" })` was taken and every delay() threw `Unknown
 * serializer "pickle"`, naming no setting.
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";

Deno.test("app options: an unknown taskSerializer is refused by new Celery() and configure()", () => {
  const refusal =
    /^RangeError: taskSerializer "pickle" is not a serializer Celeriac writes: use "json" \(the default\) or "msgpack"/;
  assert.throws(
    () => new Celery({ broker: "kv://:memory:", taskSerializer: "pickle" as never }),
    (err: Error) => refusal.test(String(err)),
  );
  const app = new Celery({ broker: "kv://:memory:" });
  assert.throws(
    () => app.configure({ taskSerializer: "pickle" as never }),
    (err: Error) => refusal.test(String(err)),
  );
  assert.equal(new Celery({ taskSerializer: "msgpack" }).config.taskSerializer, "msgpack");
});

Deno.test("app options: an unknown taskCompression is refused by new Celery()", () => {
  assert.throws(
    () => new Celery({ broker: "kv://:memory:", taskCompression: "bzip2" as never }),
    new RangeError(
      'taskCompression "bzip2" is not a compression Celeriac writes: use "zlib" or "gzip", ' +
        "or null for none",
    ),
  );
  for (const ok of ["zlib", "gzip", null] as const) {
    assert.equal(new Celery({ taskCompression: ok }).config.taskCompression, ok);
  }
});
