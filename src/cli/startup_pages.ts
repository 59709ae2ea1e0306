/**
 * Releasing the worker's start-up pages. Starting a worker runs much code
 * it never runs again (module loading, type stripping, npm resolution,
 * parsing its arguments) and reads data it never reads again (V8's start-up
 * snapshot, ICU tables): about 20 MiB of the `deno` executable's pages that
 * stay in the process's resident set (RSS) for nothing. Before the worker's
 * Web Workers start and once it is ready ({@link startReleasingPages}),
 * {@link releaseStartupPages} tells the kernel (`madvise(2)`,
 * `MADV_DONTNEED`) that this process no longer needs the resident pages of
 * the executable's code and read-only data. The pages stay in the page cache
 * (shared with every other process that maps the file); the worker maps
 * again, at a minor page fault each, those it touches afterwards, so what
 * remains resident is what the worker runs. Only mappings that cannot hold
 * this process's own data are released: not writable, and with no private
 * copy of any page (smaps' `Anonymous: 0 kB`) — memory the process wrote is
 * never touched.
 *
 * `worker.ts`, run as a program, does it on Linux with `-A` (FFI for
 * `madvise`, and Deno reads `/proc/self` only when every permission is
 * granted);
 * `CELERIAC_RELEASE_STARTUP_PAGES=0` turns it off.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { granted, NEEDS_ALL_PERMISSIONS } from "./permissions.ts";

const log = getLogger(["celeriac", "cli"]);

/** Environment variable that turns the release off when `0`. */
export const RELEASE_PAGES_ENV = "CELERIAC_RELEASE_STARTUP_PAGES";

/** `MADV_DONTNEED` from `<sys/mman.h>` (Linux). */
const MADV_DONTNEED = 4;

/**
 * A mapping whose resident pages can be released: the executable's, clean.
 *
 * @example
 * ```ts
 * import type { CleanMapping } from "./startup_pages.ts";
 * const m: CleanMapping = { start: 0x1000n, end: 0x3000n, residentKiB: 8 };
 * ```
 */
export interface CleanMapping {
  /** First address. */
  start: bigint;
  /** Address after the last byte. */
  end: bigint;
  /** Its resident pages (smaps' `Rss`), KiB. */
  residentKiB: number;
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/;

/**
 * The mappings of the executable's image in a `/proc/<pid>/smaps` text (the
 * ones the kernel mapped at `exec`: the executable's first mapping and those
 * right after it, before any other; not the copies of V8's built-ins mapped
 * elsewhere per isolate) whose resident
 * pages can be released: not writable, with no private copy of any page
 * (`Anonymous: 0 kB`) and something resident. The image stays mapped as long
 * as the process runs, so no other mapping can take its place between reading
 * smaps and releasing.
 *
 * @example
 * ```ts
 * import { cleanImageMappings } from "./startup_pages.ts";
 * const smaps = "55d0a0000000-55d0a0004000 r-xp 00000000 08:01 42 /usr/bin/deno\n" +
 *   "Rss:                  16 kB\nAnonymous:             0 kB\n";
 * cleanImageMappings(smaps, "/usr/bin/deno"); // [{ start: 0x55d0a0000000n, end: 0x55d0a0004000n, residentKiB: 16 }]
 * ```
 *
 * @param smaps the text of `/proc/<pid>/smaps`
 * @param executable the executable's path, as smaps names it
 * @returns the mappings, in address order
 */
export function cleanImageMappings(smaps: string, executable: string): CleanMapping[] {
  const image: (CleanMapping & {
    perms: string;
    anonymous: number | null;
    swapped: number | null;
  })[] = [];
  let current: (typeof image)[number] | null = null;
  for (const line of smaps.split("\n")) {
    const head = HEADER.exec(line);
    if (head) {
      const [, start, end, perms, path] = head;
      if (path !== executable) {
        if (image.length > 0) break; // past the image
        continue;
      }
      current = {
        start: BigInt(`0x${start}`),
        end: BigInt(`0x${end}`),
        perms,
        residentKiB: 0,
        anonymous: null,
        swapped: null,
      };
      image.push(current);
      continue;
    }
    const field = current && /^(Rss|Anonymous|Swap):\s+(\d+) kB/.exec(line);
    if (field?.[1] === "Rss") current!.residentKiB = Number(field[2]);
    else if (field?.[1] === "Anonymous") current!.anonymous = Number(field[2]);
    else if (field?.[1] === "Swap") current!.swapped = Number(field[2]);
  }
  // A private copy swapped out counts under Swap, not Anonymous: such a mapping is not clean.
  return image
    .filter((m) => m.perms[1] !== "w" && m.anonymous === 0 && m.swapped === 0 && m.residentKiB > 0)
    .map(({ start, end, residentKiB }) => ({ start, end, residentKiB }));
}

/**
 * Release the resident pages of the executable's clean mappings in this
 * process (see the module documentation), if this is Linux and the
 * permissions granted allow it.
 *
 * @example
 * ```ts
 * import { releaseStartupPages } from "./startup_pages.ts";
 * const result = releaseStartupPages();
 * if (typeof result === "number") console.log(`${result} KiB released`);
 * ```
 *
 * @returns the KiB released, or why nothing was
 */
export function releaseStartupPages(): number | string {
  if (Deno.build.os !== "linux") return "only done on Linux";
  if (
    !granted({ name: "env", variable: RELEASE_PAGES_ENV }) || !granted({ name: "ffi" }) ||
    !granted({ name: "read", path: "/proc/self" })
  ) {
    return NEEDS_ALL_PERMISSIONS;
  }
  if (Deno.env.get(RELEASE_PAGES_ENV) === "0") return `${RELEASE_PAGES_ENV}=0`;
  // Deno reads /proc/self/smaps and /proc/self/exe only with every permission granted, and
  // libc.so.6 is glibc's: any failure here leaves the pages resident, never the worker stopped.
  try {
    const mappings = cleanImageMappings(
      Deno.readTextFileSync("/proc/self/smaps"),
      Deno.readLinkSync("/proc/self/exe"),
    );
    const libc = Deno.dlopen("libc.so.6", {
      madvise: { parameters: ["usize", "usize", "i32"], result: "i32" },
    });
    let released = 0;
    try {
      for (const m of mappings) {
        // A call that fails (EINVAL for a locked mapping) leaves that mapping's pages as they are.
        if (libc.symbols.madvise(m.start, m.end - m.start, MADV_DONTNEED) === 0) {
          released += m.residentKiB;
        }
      }
    } finally {
      libc.close();
    }
    return released;
  } catch (err) {
    return `cannot read or release them (${(err as Error).message}; -A allows it)`;
  }
}

/**
 * Log what {@link releaseStartupPages} did (at DEBUG).
 *
 * @example
 * ```ts
 * import { logReleasedPages, releaseStartupPages } from "./startup_pages.ts";
 * logReleasedPages(releaseStartupPages());
 * ```
 *
 * @param released its result
 */
export function logReleasedPages(released: number | string): void {
  if (typeof released === "string") {
    log.debug("Start-up pages kept resident: {reason}", { reason: released });
  } else {
    log.debug("Released {mib} MiB of start-up pages ({env}=0 keeps them)", {
      mib: (released / 1024).toFixed(1),
      env: RELEASE_PAGES_ENV,
    });
  }
}

/**
 * Start the worker with its start-up pages released twice: before (the main
 * thread's start-up is over: module loading, npm resolution, connecting), so
 * that the pages the Web Workers touch while they start do not add to those
 * (the worker's peak RSS while they start was ~8 MiB lower: 97.8–100.1 MiB
 * instead of 106.3–108.2, `bench` worker `-c 2`, two pairs), and once ready.
 * What both released is logged once (at DEBUG).
 *
 * @example
 * ```ts ignore
 * import { startReleasingPages } from "./startup_pages.ts";
 * await startReleasingPages(() => worker.start());
 * ```
 *
 * @param start starts the worker (resolves once it is ready)
 */
export async function startReleasingPages(start: () => Promise<void>): Promise<void> {
  const early = releaseStartupPages();
  await start();
  const late = releaseStartupPages();
  logReleasedPages(typeof early === "number" && typeof late === "number" ? early + late : late);
}
