/**
 * The per-task id lookups of the worker's main thread (revoked ids,
 * children sent by a running task) skip the lookup while their table is
 * empty: the answers around that short cut — empty, filled, emptied again.
 */

import assert from "node:assert/strict";
import { RevokedIds } from "../src/worker/revoked_ids.ts";
import { ChildrenTracker } from "../src/worker/children.ts";
import type { Message } from "../src/protocol/message.ts";

function sent(id: string, parent: string, group?: string): Message {
  return {
    body: new Uint8Array(),
    contentType: "application/json",
    contentEncoding: "utf-8",
    headers: { id, parent_id: parent, ...(group ? { group } : {}) },
    properties: {},
  };
}

Deno.test("revoked ids: none revoked, one revoked, then expired and forgotten", () => {
  const revoked = new RevokedIds();
  assert.equal(revoked.has("a"), false);
  revoked.add(["a"], Date.now() + 60_000);
  assert.equal(revoked.has("a"), true);
  assert.equal(revoked.has("b"), false);
  revoked.add(["b"], Date.now() - 1);
  assert.equal(revoked.has("b"), false);
  assert.deepEqual(revoked.ids(), ["a"]);
});

Deno.test("children: none tracked, then a parent's children taken once", () => {
  const children = new ChildrenTracker();
  assert.deepEqual(children.take("p"), []);
  children.record(sent("c1", "p"));
  children.record(sent("c2", "p", "g"));
  children.record(sent("c3", "p", "g"));
  assert.deepEqual(children.take("other"), []);
  assert.deepEqual(children.take("p"), [{ id: "c1" }, {
    id: "g",
    members: [{ id: "c2" }, { id: "c3" }],
  }]);
  assert.deepEqual(children.take("p"), []);
  // A list handed out for an empty tracker is the caller's own.
  const list = children.take("q");
  list.push({ id: "x" });
  assert.deepEqual(children.take("q"), []);
});
