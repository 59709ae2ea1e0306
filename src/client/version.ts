/**
 * Celeriac's name and version, as workers announce them in events and
 * `inspect report`.
 *
 * @module
 */

import manifest from "../../deno.json" with { type: "json" };

/**
 * The Celeriac version (from `deno.json`).
 *
 * @example
 * ```ts
 * import { CELERIAC_VERSION } from "@celeriac/celeriac";
 * console.log(`celeriac ${CELERIAC_VERSION}`);
 * ```
 */
export const CELERIAC_VERSION: string = manifest.version;
