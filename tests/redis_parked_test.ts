import assert from "node:assert/strict";
import { envelopeOfUnacked } from "../src/broker/redis_parked.ts";

// The `unacked` hash holds kombu's `[envelope, exchange, routing_key]` as Python's json.dumps writes it.
Deno.test("envelopeOfUnacked: the envelope text, character for character, from kombu's layout", () => {
  const envelope =
    '{"body": "e30=", "headers": {"task": "t\\u00e9", "argsrepr": "(\\"a\\\\\\", \\"b\\")"}}';
  assert.equal(envelopeOfUnacked(`[${envelope}, "", "celery"]`), envelope);
  assert.equal(envelopeOfUnacked(`[${envelope}, "ex\\"change", "route\\\\"]`), envelope);
  assert.equal(envelopeOfUnacked(`[${envelope}, "é", "\\", \\""]`), envelope);
});

Deno.test("envelopeOfUnacked: null for what is not that layout (the caller re-encodes the message)", () => {
  for (
    const entry of [
      "not an entry",
      '[{"body": "e30="},"","celery"]', // compact separators
      '[{"body": "e30="}, null, "celery"]',
      '[, "", ""]',
      '["", ""]',
      '[{"body": "e30="}, "", "celery\\"]',
      "[]",
    ]
  ) {
    assert.equal(envelopeOfUnacked(entry), null, entry);
  }
});
