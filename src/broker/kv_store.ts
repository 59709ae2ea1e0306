/**
 * Shared plumbing of the Deno KV broker and result backend: `kv://` URL
 * parsing, a process-wide cache of open `Deno.Kv` handles (so every broker,
 * backend and in-process worker opening the same path uses the SAME
 * database, which matters for `kv://:memory:`), and change notification.
 *
 * Waking up is push-based. `Deno.Kv.watch()` does not see commits of other
 * processes, but a file watch does: every commit of any process
 * modifies `<file>-wal`. So in-process writers call {@link SharedKv.notify},
 * and for file databases one `Deno.watchFs` per open path, on its `-wal`
 * file only, does the same for commits of other processes. Not on the
 * directory: Deno's watcher opens and closes the path of each event it
 * reports, and closing a descriptor of the database file or its `-shm`
 * drops every SQLite lock this process holds on it, so that the next
 * process to close took itself for the last connection and deleted the
 * write-ahead log this process was still writing to. SQLite takes no locks
 * on the `-wal` file itself. Waiters also re-check once a second, only as
 * a fallback should a file-system notification be lost. The watch runs
 * only while someone waits (kv_watch.ts): a client that is done exits.
 *
 * @module
 */

import { basename, dirname, resolve } from "node:path";
import { BrokerConnectionError } from "./errors.ts";
import { guardKv } from "./kv_disk.ts";
import { waitForKvWriteLock } from "./kv_lock_wait.ts";
import { unlessAborted } from "./sleep.ts";
import {
  addWaker,
  bump,
  type KvWatchEntry,
  MEMORY_PATH,
  newWatchEntry,
  removeWaker,
  stopWatching,
} from "./kv_watch.ts";

/**
 * Settings read from a `kv://` URL.
 *
 * @example Reading a kv:// URL
 * ```ts
 * import { type KvUrl, parseKvUrl } from "@celeriac/celeriac/transports";
 * const url: KvUrl = parseKvUrl("kv://data/queue.sqlite?visibility_timeout=120");
 * url.path; // "data/queue.sqlite" (relative to the working directory)
 * url.visibilityTimeout; // 120
 * url.prefix; // undefined
 * ```
 */
export interface KvUrl {
  /** The database file as written in the URL (relative or absolute), or `:memory:`. */
  path: string;
  /** `visibility_timeout` in seconds, when the URL sets it. */
  visibilityTimeout?: number;
  /** `prefix` (the key namespace), when the URL sets it. */
  prefix?: string;
}

const URL_OPTIONS = ["visibility_timeout", "prefix"];

/**
 * Parse a Deno KV URL: `kv://relative/file.sqlite`, `kv:///absolute/file.sqlite`
 * or `kv://:memory:`, with optional `?visibility_timeout=<seconds>` and
 * `?prefix=<namespace>`.
 *
 * @example
 * ```ts
 * import { parseKvUrl } from "@celeriac/celeriac/transports";
 * parseKvUrl("kv:///var/lib/app/queue.sqlite?visibility_timeout=60");
 * // { path: "/var/lib/app/queue.sqlite", visibilityTimeout: 60 }
 * parseKvUrl("kv://:memory:?prefix=tests"); // { path: ":memory:", prefix: "tests" }
 * ```
 *
 * @param url the URL
 * @returns the parsed settings
 * @throws {TypeError} when the URL is not a `kv://` URL, has no path or an unknown option
 * @throws {RangeError} when `visibility_timeout` is not a positive number or `prefix` is empty
 */
export function parseKvUrl(url: string): KvUrl {
  const m = /^kv:\/\/([^?#]*)(?:\?([^#]*))?$/i.exec(url);
  if (!m) {
    throw new TypeError(
      `Not a Deno KV URL: "${url}" (use kv://path/to/file.sqlite, kv:///abs/path or kv://:memory:)`,
    );
  }
  const path = decodeURIComponent(m[1]);
  if (path === "" || path === "/") {
    throw new TypeError(`The Deno KV URL "${url}" names no database file: use kv://file.sqlite`);
  }
  const out: KvUrl = { path };
  for (const [key, value] of new URLSearchParams(m[2] ?? "")) {
    if (key === "visibility_timeout") {
      const seconds = Number(value);
      if (!(seconds > 0) || !Number.isFinite(seconds)) {
        throw new RangeError(
          `visibility_timeout=${value} in "${url}" must be a positive number of seconds`,
        );
      }
      out.visibilityTimeout = seconds;
    } else if (key === "prefix") {
      if (value === "") throw new RangeError(`prefix= in "${url}" must not be empty`);
      out.prefix = value;
    } else {
      throw new TypeError(
        `Unknown option "${key}" in "${url}": the KV transport accepts ${URL_OPTIONS.join(", ")}`,
      );
    }
  }
  return out;
}

/**
 * The key namespace of a KV broker or backend: the URL's `prefix` (one key
 * part) over the `prefix` option, by default `["celeriac"]`.
 *
 * @example
 * ```ts
 * import { kvNamespace, parseKvUrl } from "./kv_store.ts";
 * kvNamespace(parseKvUrl("kv://:memory:?prefix=tests"), ["app"]); // ["tests"]
 * kvNamespace(parseKvUrl("kv://:memory:"), undefined); // ["celeriac"]
 * ```
 *
 * @param parsed the parsed URL
 * @param option the `prefix` option
 * @returns the key parts every key starts with
 * @throws {RangeError} when the option names no key part
 */
export function kvNamespace(
  parsed: KvUrl,
  option: readonly string[] | undefined,
): readonly string[] {
  const prefix = parsed.prefix !== undefined ? [parsed.prefix] : option ?? ["celeriac"];
  if (prefix.length === 0) {
    throw new RangeError('prefix must name at least one key part, e.g. ["celeriac"]');
  }
  return prefix;
}

const LOCKED = /database (?:table )?is locked|database is busy/i;
const COMMIT_ATTEMPTS = 60;

/**
 * Commit an atomic operation, retrying while SQLite reports that another
 * process holds the write lock (`database is locked`: an atomic commit with
 * checks that races a commit of another process fails at once instead of
 * waiting). A failed commit changed nothing, so committing again is safe.
 *
 * @example
 * ```ts
 * import { commitAtomic } from "./kv_store.ts";
 * const kv = await Deno.openKv(":memory:");
 * const res = await commitAtomic(kv.atomic().check({ key: ["k"], versionstamp: null }).set(["k"], 1));
 * console.assert(res.ok);
 * kv.close();
 * ```
 *
 * @param op the operation to commit
 * @returns its result (`ok: false` when a check failed)
 * @throws the last error when the lock is still held after a few seconds
 */
export async function commitAtomic(
  op: Deno.AtomicOperation,
): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
  for (let attempt = 1;; attempt++) {
    try {
      return await op.commit();
    } catch (err) {
      if (attempt >= COMMIT_ATTEMPTS || !LOCKED.test(String((err as Error)?.message))) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(2 * attempt, 100)));
    }
  }
}

interface Entry extends KvWatchEntry {
  readonly opening: Promise<Deno.Kv>;
  refs: number;
  /** The opened file's device and inode (`null` for `:memory:` or until known). */
  identity: string | null;
}

const entries = new Map<string, Entry>();

async function canonicalPath(path: string): Promise<string> {
  if (path === MEMORY_PATH) return path;
  const abs = resolve(path);
  await Deno.mkdir(dirname(abs), { recursive: true });
  return resolve(await Deno.realPath(dirname(abs)), basename(abs));
}

/** A file's device and inode: a file put in the place of a deleted one has another. */
async function fileIdentity(path: string): Promise<string | null> {
  if (path === MEMORY_PATH) return null;
  try {
    const st = await Deno.stat(path);
    return `${st.dev}:${st.ino}`;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "missing";
    throw err;
  }
}

/**
 * One reference to a shared, process-wide open `Deno.Kv`. Obtain it with
 * {@link openSharedKv}; give it back with {@link SharedKv.release}.
 *
 * @example
 * ```ts
 * import { openSharedKv } from "./kv_store.ts";
 * const a = await openSharedKv(":memory:", "kv://:memory:");
 * const b = await openSharedKv(":memory:", "kv://:memory:");
 * await a.kv.set(["k"], 1);
 * console.assert((await b.kv.get(["k"])).value === 1);
 * await a.release();
 * await b.release();
 * ```
 */
export interface SharedKv {
  /** The database. Do not close it: {@link SharedKv.release} does when the last user leaves. */
  readonly kv: Deno.Kv;
  /** The canonical path of the database (absolute file path, or `:memory:`). */
  readonly path: string;
  /**
   * A counter that grows with every change seen. Read it before checking the
   * database, then pass it to {@link SharedKv.changed}: a change in between
   * is never missed.
   */
  readonly version: number;
  /** Tell waiters of this process that the database changed. */
  notify(): void;
  /**
   * Wait until {@link SharedKv.version} differs from `since` (a change by
   * this or, for files, another process), `timeoutMs` passes or the signal
   * aborts. Never rejects.
   *
   * @param since the version read before the last check
   * @param timeoutMs the longest wait: a safety re-check against lost notifications
   * @param signal stops the wait
   */
  changed(since: number, timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /**
   * Check that the path still names the file this process opened. One
   * deleted or replaced since (`rm -rf .celeriac` while a worker runs)
   * leaves this process on the old, deleted database, where nothing that
   * other processes send to the path arrives.
   *
   * @returns the error saying so, or `null` while it is the same file (always for `:memory:`,
   *   and when the path cannot be looked at: the restore sweep after the check must still run)
   */
  checkFile(): Promise<BrokerConnectionError | null>;
  /**
   * Give the reference back. The last one stops the file watch and
   * closes the database. Calling it again does nothing.
   */
  release(): Promise<void>;
}

class SharedKvRef implements SharedKv {
  readonly kv: Deno.Kv;
  readonly #entry: Entry;
  #released = false;

  constructor(entry: Entry, kv: Deno.Kv) {
    this.#entry = entry;
    this.kv = kv;
  }

  get path(): string {
    return this.#entry.path;
  }

  get version(): number {
    return this.#entry.version;
  }

  notify(): void {
    bump(this.#entry);
  }

  changed(since: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const entry = this.#entry;
    if (entry.version !== since || signal?.aborted || this.#released) return Promise.resolve();
    return new Promise((done) => {
      const wake = () => {
        clearTimeout(timer);
        removeWaker(entry, wake);
        signal?.removeEventListener("abort", wake);
        done();
      };
      const timer = setTimeout(wake, timeoutMs);
      addWaker(entry, wake);
      signal?.addEventListener("abort", wake, { once: true });
    });
  }

  async checkFile(): Promise<BrokerConnectionError | null> {
    const opened = this.#entry.identity;
    if (opened === null) return null;
    const path = this.#entry.path;
    // A stat that fails otherwise than NotFound cannot tell: not taken as lost, and the restore
    // sweep that follows the check still runs.
    const now = await fileIdentity(path).catch(() => opened);
    if (now === opened) return null;
    return new BrokerConnectionError(`kv://${path}`, undefined, {
      reason: `${path} was deleted or replaced while this process had it open: it still uses ` +
        "the old, deleted database, where nothing sent to the path arrives",
      hint: "Restart this process (and every other one that had the file open)",
      transient: false,
    });
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const entry = this.#entry;
    if (--entry.refs > 0) return;
    if (entries.get(entry.path) === entry) entries.delete(entry.path);
    stopWatching(entry);
    await entry.watching;
    for (const timer of entry.settleTimers.values()) clearTimeout(timer);
    bump(entry);
    this.kv.close();
  }
}

/**
 * Deno KV is an unstable API: without `--unstable-kv` (or `"unstable": ["kv"]`
 * in the deno.json of the project that runs) `Deno.openKv` does not exist.
 */
function kvUnavailable(url: string): BrokerConnectionError {
  return new BrokerConnectionError(url, undefined, {
    reason: "Deno KV is not enabled in this process (Deno.openKv is an unstable API)",
    hint: 'Run deno with --unstable-kv, or add "unstable": ["kv"] to your deno.json; ' +
      "or use a server, e.g. redis://127.0.0.1:6379/0",
    transient: false,
  });
}

/**
 * Open (or join) the process-wide handle of a KV database. Relative paths
 * are resolved against the working directory and the file's directory is
 * created when missing.
 *
 * @example
 * ```ts
 * import { openSharedKv } from "./kv_store.ts";
 * const shared = await openSharedKv(":memory:", "kv://:memory:");
 * await shared.kv.set(["hello"], "world");
 * await shared.release();
 * ```
 *
 * @param path a file path or `:memory:`
 * @param url the URL it came from, for error messages
 * @param signal aborts opening: the open rejects with its reason and what
 * it opened is released (one that already aborted opens nothing); default none.
 * A file whose write lock another process holds is waited for (with a
 * warning) before it is opened, as long as the signal lets it
 * @returns a reference to release when done
 * @throws {BrokerConnectionError} when the database cannot be opened
 */
export async function openSharedKv(
  path: string,
  url: string,
  signal?: AbortSignal,
): Promise<SharedKv> {
  signal?.throwIfAborted();
  const canonical = canonicalPath(path);
  const key = await canonical.catch(() => null);
  if (key !== null && key !== MEMORY_PATH) {
    await waitForKvWriteLock(key, { signal, skip: () => entries.has(key) });
  }
  const opening = joinKv(canonical, url);
  return await unlessAborted(opening, signal, async () => {
    await (await opening.catch(() => null))?.release();
  });
}

/** {@link openSharedKv} without a signal, on the path {@link canonicalPath} gives. */
async function joinKv(canonical: Promise<string>, url: string): Promise<SharedKv> {
  let key: string;
  try {
    key = await canonical;
  } catch (err) {
    throw unopenable(url, err);
  }
  let entry = entries.get(key);
  if (!entry) {
    if (typeof Deno.openKv !== "function") throw kvUnavailable(url);
    entry = {
      // A full disk, an I/O error, a read-only file: transient errors naming the file.
      ...newWatchEntry(key),
      opening: Deno.openKv(key).then((kv) => guardKv(kv, key)),
      refs: 0,
      identity: null,
    };
    entries.set(key, entry);
  }
  entry.refs++;
  try {
    const kv = await entry.opening;
    entry.identity ??= await fileIdentity(key);
    return new SharedKvRef(entry, kv);
  } catch (err) {
    entry.refs--;
    if (entries.get(key) === entry) entries.delete(key);
    throw unopenable(url, err);
  }
}

/**
 * A database file that cannot be opened (its directory cannot be made, a file that is no
 * database, no right to write there): a matter of the path or the file system, which
 * trying again does not change.
 */
function unopenable(url: string, err: unknown): BrokerConnectionError {
  return new BrokerConnectionError(url, err, {
    hint: "Check the path in the kv:// URL: a Deno KV (SQLite) file, in a directory this " +
      "process can create and write to",
    transient: false,
  });
}
