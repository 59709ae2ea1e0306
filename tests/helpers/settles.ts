/** Bounded waits for tests of things that must end (a close, a stop) against a hung peer. */

/**
 * Whether `p` settles (either way) within `ms`; the timer is cleared either way.
 *
 * @param p what must end
 * @param ms how long it may take
 */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return await Promise.race([
    p.then(() => true, () => true),
    new Promise<false>((res) => timer = setTimeout(() => res(false), ms)),
  ]).finally(() => clearTimeout(timer));
}
