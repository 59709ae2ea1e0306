/**
 * The start-up line of a worker: version, node name, app, and the broker and
 * result-backend URLs with their passwords masked.
 *
 * @module
 */

import { resolve } from "node:path";
import { maskPassword } from "../broker/errors.ts";
import { parseKvUrl } from "../broker/kv_store.ts";

/**
 * What {@link bannerFields} reports.
 *
 * @example
 * ```ts
 * import type { BannerInput } from "./banner.ts";
 * const input: BannerInput = {
 *   version: "0.1.0", hostname: "celeriac@web1", app: "file:///srv/tasks.ts",
 *   broker: "redis://:secret@127.0.0.1:6379/0", backend: null,
 * };
 * ```
 */
export interface BannerInput {
  /** Package version. */
  version: string;
  /** The worker's node name. */
  hostname: string;
  /** URL of the app module. */
  app: string;
  /** Broker URL, as configured. */
  broker: string;
  /** Result backend URL, or `null` for none. */
  backend: string | null;
}

/**
 * The banner's fields, the URLs masked, for the start-up log record.
 *
 * @example
 * ```ts
 * import { bannerFields } from "./banner.ts";
 * bannerFields({
 *   version: "0.1.0", hostname: "celeriac@web1", app: "file:///srv/tasks.ts",
 *   broker: "amqp://guest:guest@mq:5672//", backend: "rpc://",
 * }).broker; // "amqp://guest:***@mq:5672//"
 * ```
 *
 * @param input what to report
 * @returns the fields, `backend` is `disabled` when there is none
 */
export function bannerFields(input: BannerInput): Record<string, string> {
  return {
    version: input.version,
    hostname: input.hostname,
    app: input.app,
    broker: withKvFile(maskPassword(input.broker)),
    backend: input.backend === null ? "disabled" : withKvFile(maskPassword(input.backend)),
  };
}

/**
 * A `kv://` URL with a relative path names a file in the directory the process runs in
 * (workers and clients started elsewhere use another file): add the absolute path.
 *
 * @example
 * ```ts
 * withKvFile("kv://.celeriac/celeriac.sqlite"); // "kv://.celeriac/celeriac.sqlite (/srv/app/.celeriac/celeriac.sqlite)"
 * ```
 *
 * @param url the URL, password masked
 * @returns the URL, with the file it names when its path is relative
 */
export function withKvFile(url: string): string {
  if (!url.startsWith("kv://") || url.startsWith("kv:///")) return url;
  try {
    const { path } = parseKvUrl(url);
    return path === ":memory:" ? url : `${url} (${resolve(path)})`;
  } catch {
    return url; // refused when the broker opens, with the reason
  }
}
