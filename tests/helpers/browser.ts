/**
 * Debian's Chromium driven by playwright-core for the dashboard's UI tests:
 * headless, a fresh profile per launch, never a browser download. Without
 * /usr/bin/chromium the UI tests are ignored on a developer machine (and
 * say so); under CI (`CI=true`) they run and fail.
 */
// deno-lint-ignore-file no-console

import { type BrowserContext, chromium } from "playwright-core";

/** The browser the tests drive. */
export const CHROMIUM = Deno.env.get("CELERIAC_TEST_CHROMIUM") ?? "/usr/bin/chromium";

const CI = Deno.env.get("CI") === "true";
const present = await Deno.stat(CHROMIUM).then(() => true, () => false);

/** True when tests needing Chromium must be ignored. */
export const WITHOUT_CHROMIUM: boolean = !CI && !present;
if (WITHOUT_CHROMIUM) console.warn(`${CHROMIUM} not found: dashboard UI tests are ignored`);

/**
 * Launch Chromium with a fresh profile.
 *
 * @param options viewport, HTTP credentials and time zone of the context
 * @returns the context and a function closing it and removing the profile
 */
export async function launchChromium(options: {
  viewport?: { width: number; height: number };
  httpCredentials?: { username: string; password: string };
  timezoneId?: string;
} = {}): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = await Deno.makeTempDir({ prefix: "celeriac-chromium-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
    viewport: options.viewport ?? { width: 1280, height: 800 },
    httpCredentials: options.httpCredentials,
    timezoneId: options.timezoneId,
  });
  return {
    context,
    async close() {
      await context.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}
