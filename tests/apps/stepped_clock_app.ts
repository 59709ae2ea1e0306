/**
 * The first-contact tasks, in a Web Worker whose wall-clock origin is off by
 * `?step=<ms>` of its module URL: as when the system clock was stepped
 * (NTP's first correction, a VM resumed) between the main thread's start and
 * this Web Worker's spawn. Its `performance.now()` is left alone: a
 * monotonic clock is not stepped.
 */

const step = Number(new URL(import.meta.url).searchParams.get("step") ?? 0);
Object.defineProperty(performance, "timeOrigin", {
  value: performance.timeOrigin + step,
  configurable: true,
});

export { app } from "./first_contact_app.ts";
