/**
 * The package version, read from `deno.json` (published with the package,
 * embedded by `deno compile`).
 *
 * @module
 */

import config from "../../deno.json" with { type: "json" };

/**
 * The version of this Celeriac package, as published.
 *
 * @example
 * ```ts
 * import { VERSION } from "@celeriac/celeriac/worker";
 * console.log(`celeriac ${VERSION}`);
 * ```
 */
export const VERSION: string = config.version;
