import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { captureLogs } from "./helpers/logs.ts";
import { lazyLogger } from "../src/client/lazy_logger.ts";

Deno.test("lazyLogger writes through LogTape's configured sinks, in order, at each level", async () => {
  const records = await captureLogs("debug", ["celeriac", "lazy-test"]);
  try {
    const log = lazyLogger(["celeriac", "lazy-test"]);
    log.debug("first {n}", { n: 1 });
    log.info("second");
    log.warn("third {what}", { what: "x" });
    log.error("fourth");
    // Written at once on the main thread once LogTape is loaded, or one turn later before that.
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(
      records.map((r) => [r.level, r.category.join("."), r.rawMessage, r.properties]),
      [
        ["debug", "celeriac.lazy-test", "first {n}", { n: 1 }],
        ["info", "celeriac.lazy-test", "second", {}],
        ["warning", "celeriac.lazy-test", "third {what}", { what: "x" }],
        ["error", "celeriac.lazy-test", "fourth", {}],
      ],
    );
  } finally {
    await reset();
  }
});
