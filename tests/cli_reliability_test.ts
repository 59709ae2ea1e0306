import assert from "node:assert/strict";
import { reliabilityOptions } from "../src/cli/reliability.ts";
import { USAGE } from "../src/cli/options.ts";
import { DEFAULT_LEAKED_THREADS_RESTART } from "../src/worker/leaked_threads.ts";

Deno.test("--max-deliveries sets the poison limit; a bad value is refused", () => {
  assert.deepEqual(reliabilityOptions({}).maxDeliveries, undefined);
  assert.deepEqual(reliabilityOptions({ "max-deliveries": "3" }).maxDeliveries, 3);
  assert.deepEqual(reliabilityOptions({ "max-deliveries": "0" }).maxDeliveries, 0);
  assert.throws(() => reliabilityOptions({ "max-deliveries": "-1" }), /whole number >= 0/);
  assert.throws(() => reliabilityOptions({ "max-deliveries": "x" }), TypeError);
  assert.match(USAGE, /--max-deliveries N/);
});

Deno.test("--leaked-threads-restart sets when the worker restarts for leaked threads; 0 is allowed", () => {
  // The command line starts its process over: 1 by default, where a Worker of a program has 0.
  assert.equal(reliabilityOptions({}).leakedThreadsRestart, 1);
  assert.equal(DEFAULT_LEAKED_THREADS_RESTART, 0);
  assert.deepEqual(reliabilityOptions({ "leaked-threads-restart": "2" }), {
    leakedThreadsRestart: 2,
  });
  assert.deepEqual(reliabilityOptions({ "leaked-threads-restart": "0" }), {
    leakedThreadsRestart: 0,
  });
  assert.throws(
    () => reliabilityOptions({ "leaked-threads-restart": "1.5" }),
    /--leaked-threads-restart needs a whole number >= 0/,
  );
  assert.match(USAGE, /--leaked-threads-restart N/);
});

Deno.test("--leaked-threads-grace sets how long a thread runs on before it counts as leaked", () => {
  assert.equal(reliabilityOptions({}).leakedThreadsGrace, undefined, "the Worker's 5 s");
  assert.equal(reliabilityOptions({ "leaked-threads-grace": "30" }).leakedThreadsGrace, 30);
  assert.equal(reliabilityOptions({ "leaked-threads-grace": "1.5" }).leakedThreadsGrace, 1.5);
  for (const bad of ["0", "-1", "x"]) {
    assert.throws(
      () => reliabilityOptions({ "leaked-threads-grace": bad }),
      /--leaked-threads-grace needs a number of seconds > 0/,
    );
  }
  assert.match(USAGE, /--leaked-threads-grace SECONDS/);
});

Deno.test("--max-decompressed-size takes bytes or K/M/G; a bad value is refused", () => {
  assert.equal(reliabilityOptions({}).maxDecompressedSize, undefined);
  assert.equal(
    reliabilityOptions({ "max-decompressed-size": "1048576" }).maxDecompressedSize,
    2 ** 20,
  );
  assert.equal(reliabilityOptions({ "max-decompressed-size": "64M" }).maxDecompressedSize, 2 ** 26);
  assert.equal(
    reliabilityOptions({ "max-decompressed-size": "512KiB" }).maxDecompressedSize,
    2 ** 19,
  );
  assert.equal(reliabilityOptions({ "max-decompressed-size": "1g" }).maxDecompressedSize, 2 ** 30);
  for (const bad of ["0", "-1", "1.5M", "64T", "M", ""]) {
    assert.throws(
      () => reliabilityOptions({ "max-decompressed-size": bad }),
      /--max-decompressed-size needs a size in bytes >= 1, optionally with K, M or G/,
      bad,
    );
  }
  assert.match(USAGE, /--max-decompressed-size SIZE/);
});
