import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { lazyLogger } from "../src/client/lazy_logger.ts";

Deno.test("lazyLogger writes through LogTape's configured sinks, in order, at each level", async () => {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r) => records.push(r) },
    loggers: [
      { category: ["celeriac", "lazy-test"], lowestLevel: "debug", sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["mem"] },
    ],
  });
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
