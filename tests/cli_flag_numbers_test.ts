/**
 * Seconds on the command line (`-t`, `--timeout`, `--time-limit`, ...) are read as Celery's
 * click reads `-t` (Python's `float()`): decimal numbers only, and finite.
 */

import assert from "node:assert/strict";
import { positiveNumber } from "../src/cli/flag_numbers.ts";

Deno.test("cli seconds: decimal numbers > 0 are taken", () => {
  for (const [text, n] of [["30", 30], ["0.5", 0.5], [".5", 0.5], ["1e3", 1000], [" 2 ", 2]]) {
    assert.equal(positiveNumber(text as string, "-t"), n);
  }
  assert.equal(positiveNumber(undefined, "-t"), undefined);
});

Deno.test("cli seconds: other notations JavaScript reads are refused, as Python's float() does", () => {
  // Number("0x10") is 16: -t 0x10 waited 16 s, where celery -t 0x10 is a usage error.
  for (const text of ["0x10", "0b11", "0o7"]) {
    assert.throws(
      () => positiveNumber(text, "-t"),
      (err: Error) => {
        assert.equal(err.name, "UsageError");
        assert.equal(
          err.message,
          `-t needs a number of seconds > 0 written in decimal (30, 0.5, 1e3), got "${text}"`,
        );
        return true;
      },
      text,
    );
  }
  for (const text of ["", "abc", "0", "-1"]) {
    assert.throws(() => positiveNumber(text, "-t"), {
      message: `-t needs a number of seconds > 0, got "${text}"`,
    });
  }
});

Deno.test("cli seconds: a number too large to be finite is refused as not finite", () => {
  for (const text of ["1e400", "1e308", "Infinity"]) {
    assert.throws(() => positiveNumber(text, "-t"), {
      message: `-t needs a finite number of seconds > 0, got "${text}"`,
    });
  }
});
