/**
 * The worker process's resource usage, as Celery's `inspect stats` gives it
 * under `rusage` (Python's `resource.getrusage(RUSAGE_SELF)`): CPU seconds
 * in user and system mode, the peak resident set in KiB, page faults,
 * block I/O, context switches. Read from `getrusage` (through
 * `node:process`), which needs no permission.
 *
 * @module
 */

import process from "node:process";
import { PyFloat } from "../protocol/json.ts";

/**
 * `getrusage(RUSAGE_SELF)` with Celery's names: `utime` and `stime` in
 * seconds, `maxrss` the peak resident set size in KiB (not the current
 * one), and the counters.
 *
 * @example
 * ```ts
 * import { processRusage } from "./rusage.ts";
 * const { utime, maxrss } = processRusage();
 * Number(utime) >= 0 && Number(maxrss) > 0; // true
 * ```
 *
 * @returns the usage, Celery's keys in Celery's order
 */
export function processRusage(): Record<string, number | PyFloat> {
  const u = process.resourceUsage();
  return {
    // Floats in Python: a whole number of seconds is written 1.0, not 1.
    utime: new PyFloat(u.userCPUTime / 1e6),
    stime: new PyFloat(u.systemCPUTime / 1e6),
    maxrss: u.maxRSS,
    ixrss: u.sharedMemorySize,
    idrss: u.unsharedDataSize,
    isrss: u.unsharedStackSize,
    minflt: u.minorPageFault,
    majflt: u.majorPageFault,
    nswap: u.swappedOut,
    inblock: u.fsRead,
    oublock: u.fsWrite,
    msgsnd: u.ipcSent,
    msgrcv: u.ipcReceived,
    nsignals: u.signalsCount,
    nvcsw: u.voluntaryContextSwitches,
    nivcsw: u.involuntaryContextSwitches,
  };
}
