/**
 * The change notification of a shared KV handle (kv_store.ts): the waiters
 * of one open path and, for a file, the `Deno.watchFs` of its `-wal` file
 * that wakes them on commits of other processes.
 *
 * The watch runs only while someone waits. A pending watch keeps the
 * process alive, so one left running after the last wait would hold a
 * client that is done (a script that called `get()` and never closed the
 * app) open forever. It stops {@link WATCH_LINGER_MS} after the last waiter
 * left (a worker, which waits again at once, keeps it) and starts again
 * with the next waiter, which then re-checks once after the watch is in
 * place: a commit made while nothing watched is not left to the fallback
 * re-check.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["celeriac", "broker", "kv"]);

/** The path that opens a private in-memory database, shared within one process. */
export const MEMORY_PATH = ":memory:";

/** How long the file watch outlives its last waiter, in ms. */
export const WATCH_LINGER_MS = 1000;

/**
 * The state of one open path, shared by every reference to it.
 *
 * @example
 * ```ts
 * import { type KvWatchEntry, newWatchEntry } from "./kv_watch.ts";
 * const entry: KvWatchEntry = newWatchEntry(":memory:");
 * entry.version; // 0
 * ```
 */
export interface KvWatchEntry {
  /** The canonical path (absolute file path, or `:memory:`). */
  readonly path: string;
  /** A counter that grows with every change seen. */
  version: number;
  /** The waiters to call on the next change. */
  readonly wakers: Set<() => void>;
  /** The running file watch, or `null`. */
  watcher: Deno.FsWatcher | null;
  /** The loop reading the last file watch started (ends when it is closed). */
  watching: Promise<void> | null;
  /** The file cannot be watched: waiters rely on their re-check timeout. */
  watchFailed: boolean;
  /** The pending wake-ups after a file event, by delay. */
  settleTimers: Map<number, ReturnType<typeof setTimeout>>;
  /** Stops the watch when no waiter came back in time, or `null`. */
  lingerTimer: ReturnType<typeof setTimeout> | null;
}

/**
 * A new entry: version 0, no waiter, no watch.
 *
 * @example
 * ```ts
 * import { newWatchEntry } from "./kv_watch.ts";
 * newWatchEntry("/tmp/q.sqlite").watcher; // null
 * ```
 *
 * @param path the canonical path
 * @returns the entry
 */
export function newWatchEntry(path: string): KvWatchEntry {
  return {
    path,
    version: 0,
    wakers: new Set(),
    watcher: null,
    watching: null,
    watchFailed: false,
    settleTimers: new Map(),
    lingerTimer: null,
  };
}

/**
 * Count a change and wake every waiter.
 *
 * @example
 * ```ts
 * import { bump, newWatchEntry } from "./kv_watch.ts";
 * const entry = newWatchEntry(":memory:");
 * bump(entry);
 * entry.version; // 1
 * ```
 *
 * @param entry the entry that changed
 */
export function bump(entry: KvWatchEntry): void {
  entry.version++;
  for (const wake of [...entry.wakers]) wake();
}

/**
 * A file event comes when the other process writes its WAL frames, a moment
 * before its commit is visible to readers; so wake waiters shortly after
 * the event, and once more a little later in case that commit was slow
 * (e.g. waiting for an fsync). Pending timers are not reset by new events,
 * so a steady stream of commits still wakes waiters every few milliseconds.
 */
const FS_SETTLE_MS = [10, 100];

function onFileEvent(entry: KvWatchEntry): void {
  for (const delay of FS_SETTLE_MS) {
    if (entry.settleTimers.has(delay)) continue;
    entry.settleTimers.set(
      delay,
      setTimeout(() => {
        entry.settleTimers.delete(delay);
        bump(entry);
      }, delay),
    );
  }
}

/**
 * Add a waiter, starting the file watch when none runs (nothing for
 * `:memory:` or a file that cannot be watched).
 *
 * @example
 * ```ts
 * import { addWaker, newWatchEntry, removeWaker } from "./kv_watch.ts";
 * const entry = newWatchEntry(":memory:");
 * const wake = () => removeWaker(entry, wake);
 * addWaker(entry, wake);
 * entry.wakers.size; // 1
 * ```
 *
 * @param entry the entry to wait on
 * @param wake called on the next change
 */
export function addWaker(entry: KvWatchEntry, wake: () => void): void {
  entry.wakers.add(wake);
  if (entry.lingerTimer !== null) {
    clearTimeout(entry.lingerTimer);
    entry.lingerTimer = null;
  }
  startWatching(entry);
}

/**
 * Remove a waiter; the last one leaves the watch running for
 * {@link WATCH_LINGER_MS}, then stops it if no waiter came back.
 *
 * @example
 * ```ts
 * import { addWaker, newWatchEntry, removeWaker } from "./kv_watch.ts";
 * const entry = newWatchEntry(":memory:");
 * const wake = () => {};
 * addWaker(entry, wake);
 * removeWaker(entry, wake);
 * entry.wakers.size; // 0
 * ```
 *
 * @param entry the entry waited on
 * @param wake the waiter to remove
 */
export function removeWaker(entry: KvWatchEntry, wake: () => void): void {
  entry.wakers.delete(wake);
  if (entry.wakers.size > 0 || entry.watcher === null || entry.lingerTimer !== null) return;
  entry.lingerTimer = setTimeout(() => {
    entry.lingerTimer = null;
    if (entry.wakers.size === 0) stopWatching(entry);
  }, WATCH_LINGER_MS);
}

/**
 * Stop the file watch and every pending timer (the last reference leaves).
 *
 * @example
 * ```ts
 * import { newWatchEntry, stopWatching } from "./kv_watch.ts";
 * const entry = newWatchEntry(":memory:");
 * stopWatching(entry);
 * ```
 *
 * @param entry the entry
 */
export function stopWatching(entry: KvWatchEntry): void {
  if (entry.lingerTimer !== null) clearTimeout(entry.lingerTimer);
  entry.lingerTimer = null;
  entry.watcher?.close();
  entry.watcher = null;
}

function startWatching(entry: KvWatchEntry): void {
  if (entry.path === MEMORY_PATH || entry.watcher || entry.watchFailed) return;
  let watcher: Deno.FsWatcher;
  try {
    watcher = Deno.watchFs(`${entry.path}-wal`, { recursive: false });
  } catch (err) {
    entry.watchFailed = true;
    log.warn("Cannot watch {path} for commits of other processes ({error}); polling every second", {
      path: entry.path,
      error: String(err),
    });
    return;
  }
  entry.watcher = watcher;
  entry.watching = (async () => {
    try {
      for await (const event of watcher) {
        if (event.kind !== "access") onFileEvent(entry);
      }
    } catch (err) {
      if (entry.watcher !== watcher) return;
      log.warn("Watching {path} stopped: {error}", { path: entry.path, error: String(err) });
    }
  })();
  // A commit made before the watch was in place (since the waiter's check) gives no event.
  onFileEvent(entry);
}
