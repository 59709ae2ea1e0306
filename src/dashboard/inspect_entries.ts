/**
 * The task entries of `active`, `reserved` and `scheduled` inspect replies
 * as the worker page shows them: with Python reprs of their arguments, as
 * task events carry them, and masked for `--hide-args`.
 *
 * @module
 */

import { argsRepr, kwargsRepr } from "../protocol/repr.ts";

/** The payload fields of a task request in an inspect reply. */
const PAYLOAD = ["args", "kwargs", "argsrepr", "kwargsrepr"];

/** The request of an entry: a scheduled entry holds it under `request`. */
function mapRequest(
  entry: unknown,
  fn: (request: Record<string, unknown>) => Record<string, unknown>,
): unknown {
  if (entry === null || typeof entry !== "object") return entry;
  const e = entry as Record<string, unknown>;
  if (e.request !== null && typeof e.request === "object") {
    return { ...e, request: fn(e.request as Record<string, unknown>) };
  }
  return fn(e);
}

/**
 * An entry with `argsrepr` and `kwargsrepr` added: Celery 5.2 and Celeriac
 * workers send the decoded `args` (a list) and `kwargs` (an object), which
 * read back as `(2, 'x')` and `{'n': 1}` as in the task events; text they
 * sent (`safe` replies) is kept as it is.
 *
 * @example
 * ```ts
 * withReprs({ eta: "…", request: { id: "t1", args: [2, "x"], kwargs: {} } });
 * // { eta: "…", request: { …, argsrepr: "(2, 'x')", kwargsrepr: "{}" } }
 * ```
 *
 * @param entry an entry of an active, reserved or scheduled reply
 * @returns the entry with the reprs
 */
export function withReprs(entry: unknown): unknown {
  return mapRequest(entry, (r) => ({
    ...r,
    argsrepr: Array.isArray(r.args) ? argsRepr(r.args) : r.argsrepr ?? r.args,
    kwargsrepr: r.kwargs !== null && typeof r.kwargs === "object" && !Array.isArray(r.kwargs)
      ? kwargsRepr(r.kwargs as Record<string, unknown>)
      : r.kwargsrepr ?? r.kwargs,
  }));
}

/**
 * An entry with its payload masked.
 *
 * @example
 * ```ts ignore
 * maskEntry({ id: "t1", args: ["4111…"] }); // { id: "t1", args: "•••" }
 * ```
 *
 * @param entry an entry of an active, reserved or scheduled reply
 * @param mask the text shown instead
 * @returns the entry masked
 */
export function maskEntry(entry: unknown, mask: string): unknown {
  return mapRequest(entry, (r) => {
    const out = { ...r };
    for (const key of PAYLOAD) if (key in out) out[key] = mask;
    return out;
  });
}
