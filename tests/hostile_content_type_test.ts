/**
 * A task message from a producer that is not Celery may carry no content
 * type (a bare AMQP publish): the refusal says so and what to set, instead
 * of "Refusing to deserialize content of type  (task ...)".
 */

import assert from "node:assert/strict";
import { ContentDisallowedError, deserialize } from "../protocol.ts";

const body = new TextEncoder().encode("[[], {}, {}]");

Deno.test("hostile content type: a message without one is refused with a message that names what to set", () => {
  assert.throws(() => deserialize(body, "", "utf-8", "t-1"), (err: unknown) => {
    assert.ok(err instanceof ContentDisallowedError);
    assert.equal(err.contentType, "");
    // Before: "Refusing to deserialize content of type  (task t-1): ...".
    assert.match(
      err.message,
      /^Refusing to deserialize a message without a content type \(task t-1\)/,
    );
    assert.match(err.message, /content_type "application\/json"/);
    return true;
  });
});

Deno.test("hostile content type: an unknown one is still named", () => {
  assert.throws(() => deserialize(body, "text/x-weird", "utf-8", "t-2"), (err: unknown) => {
    assert.ok(err instanceof ContentDisallowedError);
    assert.match(
      err.message,
      /^Refusing to deserialize content of type text\/x-weird \(task t-2\)/,
    );
    return true;
  });
});
