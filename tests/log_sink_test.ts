/**
 * `--logfile` that cannot be opened is a usage error naming the flag, raised
 * where the file is opened: another failure while logging is set up is not
 * reported as the flag's.
 */

import assert from "node:assert/strict";
import { logSink } from "../src/cli/log_output.ts";
import { UsageError } from "../src/cli/exit_codes.ts";

Deno.test("logSink: a log file that cannot be opened is a usage error naming --logfile and its directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-logsink-" });
  try {
    const logfile = `${dir}/missing/worker.log`;
    // Before: the raw NotFound; main.ts turned any error of the logging setup into this one.
    await assert.rejects(logSink({ logfile }), (err: Error) => {
      assert.ok(err instanceof UsageError, `${err.name}: ${err.message}`);
      assert.match(
        err.message,
        new RegExp(
          `^--logfile ${logfile}: cannot open it for appending: .*\\(create its directory, ${dir}/missing, first\\)$`,
        ),
      );
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
