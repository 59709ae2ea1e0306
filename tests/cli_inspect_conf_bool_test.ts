/**
 * `inspect conf WITH_DEFAULTS` reads its argument as Celery's `strtobool`:
 * `1`, `yes`, `on`, `True` ask for the defaults too, `0`, `no`, `off`,
 * `false` do not, and any other word is refused before sending (Celery's
 * command line fails with "Cannot coerce 'maybe' to type bool").
 */

import assert from "node:assert/strict";
import { Celery } from "../mod.ts";
import { runInspect } from "../src/cli/inspect.ts";
import { UsageError } from "../src/cli/exit_codes.ts";

Deno.test("cli inspect conf: 1, yes, True, on send with_defaults true, as Celery's strtobool", async () => {
  // Only `true` and `--with-defaults` counted: `inspect conf 1` sent with_defaults false.
  const app = new Celery({ broker: "kv://:memory:", backend: null });
  const sent: unknown[] = [];
  app.control.call = ((_method: string, args: Record<string, unknown>) => {
    sent.push(args.with_defaults);
    return Promise.resolve([{ "w@h": { ok: "x" } }]);
  }) as unknown as typeof app.control.call;
  try {
    const words = ["1", "yes", "True", "ON", "true", "--with-defaults", "0", "no", "False", "off"];
    for (const word of words) {
      assert.equal(await runInspect(app, ["conf", word], { json: true }), 0, word);
    }
    assert.equal(await runInspect(app, ["conf"], { json: true }), 0);
    assert.deepEqual(sent, [true, true, true, true, true, true, false, false, false, false, false]);
    await assert.rejects(runInspect(app, ["conf", "maybe"], {}), UsageError);
    await assert.rejects(runInspect(app, ["conf", "constructor"], {}), UsageError);
    assert.equal(sent.length, 11, "nothing sent for a word that is not a yes or a no");
  } finally {
    await app.close();
  }
});
