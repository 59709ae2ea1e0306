/**
 * Canvas wire forms against Celery 5.2.6 captures: the messages planned for
 * chain, chain with an immutable step, group-in-chain upgraded to a chord,
 * group, chord, map, starmap and chunks are re-encoded with the fixture's
 * ids and compared byte for byte (body) and key for key (headers) with what
 * Python published. Plus signature validation, result tuples and the
 * ChordError text.
 */

import assert from "node:assert/strict";
import {
  chainSignature,
  chordError,
  chordSignature,
  decodeChordMember,
  decodeGroupMeta,
  decodeSignature,
  encodeCanvasSend,
  encodeChordMember,
  encodeGroupMeta,
  groupSignature,
  planCanvas,
  ProtocolError,
  pyJsonDumps,
  resultTupleFromJson,
  resultTuplesText,
  resultTupleToJson,
  type SignatureDict,
} from "../protocol.ts";
import { decodeTaskHeaders } from "../src/protocol/task_request.ts";

const FIXTURES = new URL("./fixtures/celery-5.2/redis/", import.meta.url);

interface FixtureMessage {
  envelope: { headers: Record<string, unknown> };
  body_bytes_b64: string;
  body_decoded: unknown;
}

function fixture(rel: string): { messages: FixtureMessage[]; [k: string]: unknown } {
  return JSON.parse(Deno.readTextFileSync(new URL(rel, FIXTURES)));
}

function s(task: string, ...args: unknown[]): SignatureDict {
  return { task, args, kwargs: {}, options: {}, subtask_type: null, immutable: false };
}

function si(task: string, ...args: unknown[]): SignatureDict {
  return { ...s(task, ...args), immutable: true };
}

function mapSig(kind: "xmap" | "xstarmap", task: SignatureDict, it: unknown[]): SignatureDict {
  return {
    task: kind === "xmap" ? "celery.map" : "celery.starmap",
    args: [],
    kwargs: { task, it },
    options: {},
    subtask_type: kind,
    immutable: false,
  };
}

function b64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Plan `sig` with the fixture's ids (in the order the planner asks) and compare every message. */
function assertMatches(
  file: string,
  sig: SignatureDict,
  ids: string[],
  sameKwargsRepr = true,
): void {
  const fx = fixture(file);
  const queue = [...ids];
  const first = fx.messages[0].envelope.headers;
  const replyTo = (fx.messages[0].envelope as unknown as { properties: { reply_to: string } })
    .properties.reply_to;
  const plan = planCanvas(sig, { newId: () => queue.shift()!, replyTo });
  assert.equal(queue.length, 0, "every fixture id was used");
  assert.equal(plan.sends.length, fx.messages.length);
  plan.sends.forEach((send, i) => {
    const want = fx.messages[i];
    const msg = encodeCanvasSend(send, {
      now: new Date(),
      origin: String(first.origin),
      replyTo,
    });
    const wantHeaders = { ...want.envelope.headers };
    // Python's repr shows the nested args tuple as (); ours shows the list []: logs only.
    if (!sameKwargsRepr) wantHeaders.kwargsrepr = msg.headers.kwargsrepr;
    assert.deepEqual(msg.headers, wantHeaders, `${file} message ${i} headers`);
    assert.equal(b64(msg.body), want.body_bytes_b64, `${file} message ${i} body bytes`);
  });
}

Deno.test("canvas: chain publishes only its first task, the rest reversed in embed.chain", () => {
  assertMatches(
    "publish/chain.json",
    chainSignature([s("capapp.add", 1, 2), s("capapp.add", 3), s("capapp.mul", 4)]),
    [
      "26c792fe-336c-4b41-b3d5-4d7b37b0f851",
      "91f3b2a7-1e53-40f6-9120-364aa9f67db6",
      "e4f0f02e-984a-4f47-ab63-6b73f46ac1ca",
    ],
  );
});

Deno.test("canvas: an immutable chain step keeps immutable: true", () => {
  assertMatches(
    "publish/chain_immutable.json",
    chainSignature([s("capapp.add", 1, 2), si("capapp.add", 10, 10), s("capapp.mul", 2)]),
    [
      "4393d616-bc96-4ef8-a197-76cf1b4a05e0",
      "94aa04b7-a9c6-4e21-a463-80e41458300b",
      "a9e32c43-8af6-4648-addc-22ea172b82a7",
    ],
  );
});

Deno.test("canvas: task | group | task upgrades to a celery.chord step, byte for byte", () => {
  assertMatches(
    "publish/chain_group_upgrade.json",
    chainSignature([
      s("capapp.add", 1, 1),
      groupSignature([s("capapp.add", 1), s("capapp.add", 2)]),
      s("capapp.tsum"),
    ]),
    [
      "2a4fd41d-de9b-441a-8fd5-04fed3cf0de8",
      "072a9968-55bd-4aae-a299-e08c5b68ef33",
      "15868fe1-7560-494d-b20c-2c94642a6f24",
      "039efa4b-f831-474e-a8ee-e1a63d882a93",
      "82b8ae13-63b2-4827-8018-0d72381cae72",
    ],
  );
});

Deno.test("canvas: group members share the group header, group_index null as in 5.2", () => {
  assertMatches(
    "publish/group.json",
    groupSignature([0, 1, 2].map((i) => s("capapp.add", i, i))),
    [
      "573192ea-ca1c-4fd8-888d-ca16c7814843",
      "3d120253-29db-4466-8e3e-1bbed8d7eee6",
      "864dcf45-a2b5-46fa-9024-7643aec72054",
      "5feaf985-ff8c-43c9-aef0-58ac7b657f63",
    ],
  );
});

Deno.test("canvas: group_index 0..n-1 on every group member when asked (Celery >= 5.3.4)", () => {
  const plan = planCanvas(groupSignature([s("a"), s("b")]), { groupIndex: "always" });
  assert.deepEqual(plan.sends.map((x) => x.groupIndex), [0, 1]);
});

Deno.test("canvas: chord header members carry group, group_index and embed.chord; size 2", () => {
  const fx = fixture("publish/chord.json");
  assertMatches(
    "publish/chord.json",
    chordSignature(
      groupSignature([s("capapp.add", 1, 1), s("capapp.add", 2, 2)]),
      s("capapp.tsum"),
    ),
    [
      "547f3c87-f129-4817-b4ec-36cd087713ea",
      "8a4e7ff5-7c1c-41d5-a240-e3dec1cdd822",
      "1cf13c21-2b65-48b0-99d0-f8252912bcdc",
      "e56466cd-a551-4240-8cc7-1d647c08686b",
    ],
  );
  const plan = planCanvas(chordSignature(groupSignature([s("a"), s("b")]), s("c")));
  assert.deepEqual(plan.chordSizes, [{ groupId: plan.sends[0].group, size: 2 }]);
  const sizeKey = Object.keys(fx.backend_db_keys as object)[0];
  assert.match(sizeKey, /^celery-taskset-meta-547f3c87-f129-4817-b4ec-36cd087713ea\.s$/);
  assert.equal(plan.result.id, plan.sends[0].embed.chord?.options.task_id);
  assert.equal(plan.result.parent?.members?.length, 2);
});

Deno.test("canvas: map, starmap and chunks publish celery.map / celery.starmap messages", () => {
  assertMatches("publish/map.json", mapSig("xmap", s("capapp.tsum"), [[1, 2], [3, 4]]), [
    "7ec9ebc9-2c19-4846-98d0-0a52981fadff",
  ], false);
  assertMatches("publish/starmap.json", mapSig("xstarmap", s("capapp.add"), [[1, 2], [3, 4]]), [
    "3e428683-f736-45a4-9df4-aedfa34b278e",
  ], false);
  const chunks: SignatureDict = {
    task: "celery.chunks",
    args: [],
    kwargs: { task: s("capapp.add"), it: [0, 1, 2, 3, 4].map((i) => [i, i]), n: 2 },
    options: {},
    subtask_type: "chunks",
    immutable: false,
  };
  assertMatches("publish/chunks.json", chunks, [
    "f12dde66-a24b-4b62-be2e-87d5f6b68dc2",
    "a6a8ad66-9fe7-4175-86bf-694de1a5c1ee",
    "4d08b85d-ede0-450f-bbb3-3580e706726a",
    "10b3ad8d-3dc2-4e64-9c3e-7cc38e8a3ca2",
  ], false);
});

Deno.test("canvas: signatures Python embedded decode, and re-plan into the same next step", () => {
  const fx = fixture("publish/chain_group_upgrade.json");
  const embed = (fx.messages[0].body_decoded as unknown[])[2] as { chain: unknown[] };
  const chordStep = decodeSignature(embed.chain[0], "embed.chain[0]");
  assert.equal(chordStep.subtask_type, "chord");
  // What a worker does with the popped chord step after add(1, 1) returned 2.
  const plan = planCanvas(chordStep, { args: [2] });
  assert.deepEqual(plan.sends.map((x) => x.args), [[2, 1], [2, 2]]);
  assert.deepEqual(plan.sends.map((x) => x.id), [
    "15868fe1-7560-494d-b20c-2c94642a6f24",
    "039efa4b-f831-474e-a8ee-e1a63d882a93",
  ]);
  assert.deepEqual(plan.sends.map((x) => x.group), [
    "2a4fd41d-de9b-441a-8fd5-04fed3cf0de8",
    "2a4fd41d-de9b-441a-8fd5-04fed3cf0de8",
  ]);
  assert.deepEqual(plan.sends.map((x) => x.groupIndex), [0, 1]);
  assert.equal(plan.sends[0].embed.chord?.options.task_id, "072a9968-55bd-4aae-a299-e08c5b68ef33");
  assert.deepEqual(plan.chordSizes, [{ groupId: "2a4fd41d-de9b-441a-8fd5-04fed3cf0de8", size: 2 }]);
});

Deno.test("canvas: a chord inside a chain carries the rest of the chain on its body", () => {
  const plan = planCanvas(
    chainSignature([chordSignature(groupSignature([s("a"), s("b")]), s("sum")), s("double")]),
  );
  const body = plan.sends[0].embed.chord!;
  assert.equal((body.options.chain as SignatureDict[])[0].task, "double");
  assert.equal(plan.result.id, (body.options.chain as SignatureDict[])[0].options.task_id);
});

Deno.test("canvas: an empty chord header sends the body at once with [] first", () => {
  const plan = planCanvas(chordSignature(groupSignature([]), s("sum", 5)));
  assert.equal(plan.sends.length, 1);
  assert.deepEqual(plan.sends[0].args, [[], 5]);
  assert.deepEqual(plan.chordSizes, []);
});

Deno.test("canvas: an empty group sends nothing; an empty chain is a TypeError", () => {
  const plan = planCanvas(groupSignature([]));
  assert.equal(plan.sends.length, 0);
  assert.deepEqual(plan.result.members, []);
  assert.throws(() => planCanvas(chainSignature([])), TypeError);
});

Deno.test("canvas: a chain of 10,000 steps plans without recursion limits", () => {
  const steps = Array.from({ length: 10_000 }, (_, i) => s("t.inc", i));
  const plan = planCanvas(chainSignature(steps));
  assert.equal(plan.sends.length, 1);
  assert.equal(plan.sends[0].embed.chain?.length, 9_999);
  assert.equal(plan.sends[0].embed.chain?.[9_998].args[0], 1);
});

const MANY = 200_000;
const manyTasks = () => Array.from({ length: MANY }, (_, i) => s("t.inc", i));

Deno.test("canvas: a group of 200,000 tasks inside a chord's header group plans every one", () => {
  const plan = planCanvas(
    chordSignature(groupSignature([groupSignature(manyTasks())]), s("t.sum")),
  );
  assert.deepEqual(plan.chordSizes.map((c) => c.size), [MANY]);
  assert.equal(plan.sends.length, MANY);
});

Deno.test("canvas: chunks of 200,000 parts in a chord's header plans every part", () => {
  const chunks: SignatureDict = {
    task: "celery.chunks",
    args: [],
    kwargs: { task: s("t.add"), it: Array.from({ length: MANY }, (_, i) => [i, i]), n: 1 },
    options: {},
    subtask_type: "chunks",
    immutable: false,
  };
  const plan = planCanvas(chordSignature(groupSignature([chunks]), s("t.sum")));
  assert.deepEqual(plan.chordSizes.map((c) => c.size), [MANY]);
});

Deno.test("canvas: a chain of 200,000 steps inside a chain is flattened", () => {
  const plan = planCanvas(chainSignature([s("t.first"), chainSignature(manyTasks())]));
  assert.equal(plan.sends.length, 1);
  assert.equal(plan.sends[0].embed.chain?.length, MANY);
  assert.equal(plan.sends[0].embed.chain?.[MANY - 1].args[0], 0);
});

Deno.test("canvas: unknown keys or a wrong subtask_type are ProtocolErrors naming the problem", () => {
  assert.throws(
    () => decodeSignature({ ...s("t"), colour: "red" }, "embed.chain[0]"),
    (e: unknown) =>
      e instanceof ProtocolError && /embed\.chain\[0\] has unknown key\(s\) colour/.test(e.message),
  );
  assert.throws(
    () => decodeSignature({ ...s("t"), subtask_type: "pipeline" }),
    (e: unknown) => e instanceof ProtocolError && /subtask_type 'pipeline'/.test(e.message),
  );
  assert.throws(() => decodeSignature({ args: [] }), ProtocolError);
  assert.throws(() => planCanvas({ ...s("t"), args: 5 as never }), ProtocolError);
  // chord_size (newer Celery) is accepted.
  assert.equal(decodeSignature({ ...s("t"), chord_size: 3 }).chord_size, 3);
});

Deno.test("canvas: a 5.6-style message (group_index on group members, stamps) decodes", () => {
  const msg = encodeCanvasSend(
    planCanvas(groupSignature([s("t.a")]), { groupIndex: "always" }).sends[0],
    {
      now: new Date(),
      origin: "gen1@h",
      replyTo: "r",
      headers: { replaced_task_nesting: 0, stamped_headers: ["on"], stamps: { on: "x" }, on: "x" },
    },
  );
  const req = decodeTaskHeaders(msg);
  assert.equal(req.groupIndex, 0);
  assert.deepEqual(req.headers.stamps, { on: "x" });
});

Deno.test("canvas: stamps in a signature's options (Celery >= 5.3) become message headers", () => {
  const sig = { ...s("t.a"), options: { stamped_headers: ["on"], stamps: { on: "x" }, on: "x" } };
  const msg = encodeCanvasSend(planCanvas(sig).sends[0], {
    now: new Date(),
    origin: "gen1@h",
    replyTo: "r",
  });
  assert.deepEqual(
    [msg.headers.stamped_headers, msg.headers.stamps, msg.headers.on],
    [["on"], { on: "x" }, "x"],
  );
});

Deno.test("result tuples and saved group metas match Celery's forms", () => {
  const fx = fixture("worker-extended/result_group_saved.json");
  const raw = (fx.group_meta as { raw: string }).raw;
  const t = decodeGroupMeta(raw);
  assert.equal(t.id, "812c9f5a-e6f2-47a3-a7ba-61fec8a1f409");
  assert.equal(encodeGroupMeta(t.id, t.members!.map((m) => m.id)), raw);
  const chain = fixture("worker-extended/result_chain.json");
  const metas = chain.final_meta_values as Record<string, { raw: string }>;
  const first = JSON.parse(metas["d8b416a2-2b32-49b8-94bf-a428d0033e3b"].raw);
  assert.deepEqual(resultTupleFromJson(first.children[0]), {
    id: "263a8d43-81dc-48de-9236-1a64b8d4664a",
  });
});

Deno.test("result tuples as text: what pyJsonDumps writes of their arrays", () => {
  const tuples = [
    { id: "a" },
    {
      id: "g",
      members: [{ id: "m1" }, { id: "c2", parent: { id: "c1" } }, { id: "e", members: [] }],
    },
    { id: 'caf\u00e9 "q"', parent: { id: "p", members: [{ id: "x" }] } },
  ];
  assert.equal(resultTuplesText(tuples), pyJsonDumps(tuples.map(resultTupleToJson)));
  assert.equal(resultTuplesText([]), "[]");
});

Deno.test("chord join entries and the ChordError text match the 5.2 Redis backend", () => {
  const fx = fixture("worker-extended/result_chord_header_failure.json");
  const cmds = (fx.redis_commands_in_window as { db: number; cmd: string[] }[])
    .filter((c) => c.db === 2 && c.cmd[0] === "ZADD").map((c) => c.cmd);
  assert.equal(
    cmds[0][3],
    encodeChordMember("ad82ad75-fdd0-41c1-839e-9ffa51da2078", "SUCCESS", "2"),
  );
  const failed = decodeChordMember(cmds[1][3]);
  assert.equal(failed.state, "FAILURE");
  const metas = fx.final_meta_values as Record<string, { raw: string }>;
  const body = JSON.parse(metas["e3ce7222-7bab-4251-bfd0-d35184d48913"].raw);
  assert.deepEqual(chordError(failed.taskId, failed.result as never), body.result);
});

Deno.test("canvas: a chain's, group's and chord's own options and links go where Celery 5.2 puts them", () => {
  const eb = { ...s("t.eb"), options: { task_id: "EB" } };
  const cb = { ...s("t.cb"), options: { task_id: "CB" } };
  const ids = (sigs: unknown) => (sigs as SignatureDict[] | null)?.map((e) => e.options.task_id);
  const own = { queue: "q", countdown: 5, link: [cb], link_error: [eb] };

  // chain: other options on the first step, errbacks on every step, callbacks on the last.
  const chained = planCanvas({ ...chainSignature([s("a"), s("b"), s("c")]), options: own });
  const [first] = chained.sends;
  assert.equal(chained.sends.length, 1);
  assert.equal(first.options.queue, "q");
  assert.equal(first.options.countdown, 5);
  assert.deepEqual(ids(first.embed.errbacks), ["EB"]);
  assert.equal(first.embed.callbacks, null);
  const [last, middle] = first.embed.chain!;
  assert.equal(middle.options.queue, undefined, "only the first step takes .set() options");
  assert.deepEqual(ids(middle.options.link_error), ["EB"]);
  assert.deepEqual(ids(last.options.link_error), ["EB"]);
  assert.deepEqual(ids(last.options.link), ["CB"]);
  assert.equal(middle.options.link, undefined);

  // group: every member, under the call's options.
  const grouped = planCanvas({ ...groupSignature([s("a"), s("b")]), options: own }, {
    options: { countdown: 9 },
  });
  for (const m of grouped.sends) {
    assert.equal(m.options.queue, "q");
    assert.equal(m.options.countdown, 9, "the call's options win");
    assert.deepEqual(ids(m.embed.errbacks), ["EB"]);
    assert.deepEqual(ids(m.embed.callbacks), ["CB"]);
  }

  // chord: options to the header members and the body, links to the body only.
  const header = { ...groupSignature([s("a"), s("b")]), options: { priority: 3 } };
  const chorded = planCanvas(chordSignature(header, s("sum"), own));
  for (const m of chorded.sends) {
    assert.equal(m.options.queue, "q");
    assert.equal(m.options.priority, 3, "the header group's own options too");
    assert.equal(m.embed.errbacks, null);
    const body = m.embed.chord!;
    assert.equal(body.options.queue, "q");
    assert.deepEqual(ids(body.options.link_error), ["EB"]);
    assert.deepEqual(ids(body.options.link), ["CB"]);
  }
});

Deno.test("canvas: a task id given to a chain or chord is its result's: the last step's, the body's", () => {
  const chained = planCanvas(chainSignature([s("a"), s("b")]), { options: { task_id: "X" } });
  assert.notEqual(chained.sends[0].id, "X", "not the first step's");
  assert.equal(chained.sends[0].embed.chain![0].options.task_id, "X");
  assert.equal(chained.result.id, "X");
  const own = planCanvas(chainSignature([s("a"), s("b")], { task_id: "Z" }));
  assert.equal(own.result.id, "Z", "as chain(...).set({ taskId })");
  const chorded = planCanvas(chordSignature(groupSignature([s("a"), s("b")]), s("sum")), {
    options: { task_id: "Y" },
  });
  assert.equal(chorded.result.id, "Y");
  for (const m of chorded.sends) {
    assert.equal(m.embed.chord!.options.task_id, "Y");
    assert.notEqual(m.id, "Y");
  }
});
