/**
 * Chord joins for chord header members that will never run: the last step
 * of a chain in a chord header after an earlier step failed (or was
 * revoked), and the body of a nested chord that failed. Each joins its
 * chord as failed, so that chord fails with `ChordError` rather than
 * waiting for it forever — as Celery's `mark_as_failure` does for the
 * elements of a failed chain.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { chordParts, kind } from "../protocol/canvas_shape.ts";
import { chainSteps } from "../protocol/canvas_nesting.ts";
import type { SignatureDict } from "../protocol/message.ts";
import { decodeSignature } from "../protocol/signature.ts";
import type { ChordJoin } from "./chords.ts";
import type { Parent } from "./follow_ups.ts";
import { oneLine } from "./log_values.ts";

const log = getLogger(["celeriac", "worker", "canvas"]);

/** The signature whose result a canvas's result is: a chord's body, a chain's last step. */
function resultSignature(sig: SignatureDict): SignatureDict {
  switch (kind(sig)) {
    case "chord":
      return resultSignature(chordParts(sig).body);
    case "chain": {
      const steps = chainSteps(sig);
      return steps.length ? resultSignature(steps[steps.length - 1]) : sig;
    }
    default:
      return sig;
  }
}

function memberJoin(sig: SignatureDict, resultJson: string, parent: Parent): ChordJoin | null {
  const o = resultSignature(sig).options ?? {};
  const { chord, group_id: groupId, task_id: taskId, group_index: index } = o;
  if (!chord || typeof groupId !== "string" || typeof taskId !== "string") return null;
  return {
    part: {
      groupId,
      groupIndex: typeof index === "number" ? index : null,
      taskId,
      state: "FAILURE",
      resultJson,
    },
    body: decodeSignature(chord, `${sig.task}.options.chord`),
    parent,
  };
}

/**
 * The joins of the chord header members among `sigs`, which will not run.
 *
 * @example
 * ```ts ignore
 * const joins = failedMemberJoins(embed.chain ?? [], pyJsonDumps(exc), parent);
 * ```
 *
 * @param sigs signatures that will not run (remaining chain steps, a failed chord's body)
 * @param resultJson the exception they fail with, as JSON
 * @param parent the task as parent of the chords' bodies
 * @returns one join per chord header member
 */
export function failedMemberJoins(
  sigs: readonly SignatureDict[],
  resultJson: string,
  parent: Parent,
): ChordJoin[] {
  const out: ChordJoin[] = [];
  for (const sig of sigs) {
    try {
      const join = memberJoin(sig, resultJson, parent);
      if (join) out.push(join);
    } catch (err) {
      log.error("Task {task} will not run, and its chord could not be told: {error}", {
        task: oneLine(sig.task),
        error: oneLine((err as Error).message),
      });
    }
  }
  return out;
}
