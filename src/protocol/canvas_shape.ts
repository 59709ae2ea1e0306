/**
 * The shapes of a canvas as signature dicts: building `celery.group`,
 * `celery.chain` and `celery.chord` signatures, and reading them as Celery
 * does — the canvas type, a group's members, a chord's header and body,
 * chunks as a group of starmaps, the links and options a canvas passes to
 * its parts. Pure; reading a nested canvas (a chain's flattened steps, a
 * group's flattened members, a chord's size) is in canvas_nesting.ts.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import type { SignatureDict } from "./message.ts";
import { decodeSignature } from "./signature.ts";

/**
 * A signature option holding one signature or a list of them (`link`,
 * `link_error`, `chain`), decoded; `null` when absent or empty.
 *
 * @example
 * ```ts
 * import { sigList } from "./canvas_shape.ts";
 * sigList(undefined, "options.link"); // null
 * ```
 *
 * @throws {ProtocolError} when a member is not a signature dict
 */
export function sigList(v: unknown, where: string): SignatureDict[] | null {
  if (v === null || v === undefined) return null;
  const list = Array.isArray(v) ? v : [v];
  return list.length ? list.map((s, i) => decodeSignature(s, `${where}[${i}]`)) : null;
}

/**
 * A non-empty string option, else undefined.
 *
 * @example
 * ```ts
 * import { optionText } from "./canvas_shape.ts";
 * optionText(""); // undefined
 * ```
 */
export function optionText(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

/**
 * The members of a group or the steps of a chain, decoded.
 *
 * @example
 * ```ts
 * import { groupSignature, tasksOf } from "./canvas_shape.ts";
 * tasksOf(groupSignature([])); // []
 * ```
 *
 * @throws {ProtocolError} when the signature has no task list
 */
export function tasksOf(sig: SignatureDict): SignatureDict[] {
  const tasks = sig.kwargs.tasks ?? sig.args[0];
  if (!Array.isArray(tasks)) {
    throw new ProtocolError(`${sig.task} signature needs kwargs.tasks as a list of signatures`);
  }
  return tasks.map((t, i) => decodeSignature(t, `${sig.task}.tasks[${i}]`));
}

/**
 * The canvas type of a signature (`chain`, `group`, `chord`, `chunks`,
 * `xmap`, ...), or null for a plain task.
 *
 * @example
 * ```ts
 * import { chainSignature, kind } from "./canvas_shape.ts";
 * kind(chainSignature([])); // "chain"
 * ```
 */
export function kind(sig: SignatureDict): string | null {
  if (sig.subtask_type) return sig.subtask_type;
  if (sig.task === "celery.chain") return "chain";
  if (sig.task === "celery.group") return "group";
  if (sig.task === "celery.chord") return "chord";
  return null;
}

/**
 * Build a `celery.group` signature dict.
 *
 * @example
 * ```ts
 * import { groupSignature } from "@celeriac/celeriac/protocol";
 * groupSignature([]).task; // "celery.group"
 * ```
 *
 * @param tasks the members
 * @param options group options (`task_id` = the group id)
 * @returns the dict
 */
export function groupSignature(
  tasks: readonly SignatureDict[],
  options: Record<string, unknown> = {},
): SignatureDict {
  return {
    task: "celery.group",
    args: [],
    kwargs: { tasks: [...tasks] },
    options,
    subtask_type: "group",
    immutable: false,
  };
}

/**
 * Build a `celery.chain` signature dict.
 *
 * @example
 * ```ts
 * import { chainSignature } from "@celeriac/celeriac/protocol";
 * chainSignature([]).subtask_type; // "chain"
 * ```
 *
 * @param tasks the steps, in order
 * @param options chain options
 * @returns the dict
 */
export function chainSignature(
  tasks: readonly SignatureDict[],
  options: Record<string, unknown> = {},
): SignatureDict {
  return {
    task: "celery.chain",
    args: [],
    kwargs: { tasks: [...tasks] },
    options,
    subtask_type: "chain",
    immutable: false,
  };
}

/**
 * Build a `celery.chord` signature dict (Celery's key order: `kwargs`,
 * `header`, `body`).
 *
 * @example
 * ```ts
 * import { chordSignature, groupSignature } from "@celeriac/celeriac/protocol";
 * const body = { task: "t.sum", args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
 * chordSignature(groupSignature([]), body).kwargs.body === body; // true
 * ```
 *
 * @param header a group signature
 * @param body the body
 * @param options chord options
 * @returns the dict
 */
export function chordSignature(
  header: SignatureDict,
  body: SignatureDict,
  options: Record<string, unknown> = {},
): SignatureDict {
  return {
    task: "celery.chord",
    args: [],
    kwargs: { kwargs: {}, header, body },
    options,
    subtask_type: "chord",
    immutable: false,
  };
}

/**
 * A chord's header (as a group) and body, decoded.
 *
 * @example
 * ```ts
 * import { chordParts, chordSignature, groupSignature } from "./canvas_shape.ts";
 * const body = { task: "t.sum", args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
 * chordParts(chordSignature(groupSignature([]), body)).body.task; // "t.sum"
 * ```
 *
 * @throws {ProtocolError} when it has no body or a malformed header
 */
export function chordParts(sig: SignatureDict): { header: SignatureDict; body: SignatureDict } {
  const k = sig.kwargs;
  const rawHeader = k.header ?? sig.args[0];
  const rawBody = k.body ?? sig.args[1];
  if (rawBody === undefined || rawBody === null) {
    throw new ProtocolError("A chord signature needs a body (kwargs.body)");
  }
  const header = Array.isArray(rawHeader)
    ? groupSignature(rawHeader.map((t, i) => decodeSignature(t, `chord.header[${i}]`)))
    : decodeSignature(rawHeader, "chord.header");
  return { header, body: decodeSignature(rawBody, "chord.body") };
}

/**
 * Chunks become a group of `celery.starmap` signatures, as in Celery.
 *
 * @example
 * ```ts
 * import { chunksToGroup } from "./canvas_shape.ts";
 * const task = { task: "t.add", args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
 * const g = chunksToGroup({ ...task, task: "celery.chunks", subtask_type: "chunks", kwargs: { task, it: [[1, 1], [2, 2], [3, 3]], n: 2 } });
 * (g.kwargs.tasks as unknown[]).length; // 2
 * ```
 *
 * @throws {ProtocolError} when kwargs are not `{task, it, n >= 1}`
 */
export function chunksToGroup(sig: SignatureDict): SignatureDict {
  const { task, it, n } = sig.kwargs as { task: unknown; it: unknown; n: unknown };
  if (!Array.isArray(it) || typeof n !== "number" || !(n >= 1)) {
    throw new ProtocolError("celery.chunks needs kwargs {task, it: [...], n >= 1}");
  }
  const inner = decodeSignature(task, "celery.chunks.task");
  const parts: SignatureDict[] = [];
  for (let i = 0; i < it.length; i += n) {
    parts.push({
      task: "celery.starmap",
      args: [],
      kwargs: { task: inner, it: it.slice(i, i + n) },
      options: {},
      subtask_type: "xstarmap",
      immutable: false,
    });
  }
  return groupSignature(parts, { ...sig.options });
}

/**
 * `sig` with `links` (one signature dict or a list) added after its own
 * `link` or `link_error` signatures.
 *
 * @example
 * ```ts
 * import { addLinks } from "./canvas_shape.ts";
 * const t = { task: "t.add", args: [], kwargs: {}, options: {}, subtask_type: null, immutable: false };
 * addLinks(t, "link_error", [{ ...t, task: "t.eb" }]).options.link_error; // [{ task: "t.eb", ... }]
 * ```
 *
 * @throws {ProtocolError} when a link is not a signature dict
 */
export function addLinks(
  sig: SignatureDict,
  name: "link" | "link_error",
  links: unknown,
): SignatureDict {
  const extra = sigList(links, `${sig.task}.options.${name}`);
  if (!extra) return sig;
  const own = sigList(sig.options[name], `${sig.task}.options.${name}`) ?? [];
  return { ...sig, options: { ...sig.options, [name]: [...own, ...extra] } };
}

/**
 * Options a canvas keeps to itself — its ids and its place in an outer
 * group, chord or chain — rather than passing them to its parts.
 */
const OWN_KEYS = new Set([
  "task_id",
  "group_id",
  "group_index",
  "chord",
  "chain",
  "root_id",
  "parent_id",
]);

/**
 * A canvas's options that its parts take (`.set()` on a chain, group or
 * chord; its links): all but its ids and its place in an outer canvas.
 *
 * @example
 * ```ts
 * import { partOptions } from "./canvas_shape.ts";
 * partOptions({ task_id: "x", queue: "q" }); // { queue: "q" }
 * ```
 */
export function partOptions(options: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in options) if (!OWN_KEYS.has(k)) out[k] = options[k];
  return out;
}
