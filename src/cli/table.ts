/**
 * Plain-text tables for the command line.
 *
 * @module
 */

/**
 * Lay out rows in columns, the first row as a header, cells cut to `max`.
 *
 * @example
 * ```ts
 * table([["NODE", "STATUS"], ["celeriac@a", "OK"]]);
 * // "NODE        STATUS\nceleriac@a  OK"
 * ```
 *
 * @param rows header then data rows
 * @param max widest cell (longer cells end with `…`)
 * @returns the text, without a trailing newline
 */
export function table(rows: readonly (readonly unknown[])[], max = 60): string {
  const cells = rows.map((r) =>
    r.map((c) => {
      const s = c === null || c === undefined ? "-" : String(c);
      return s.length > max ? s.slice(0, max - 1) + "…" : s;
    })
  );
  const widths: number[] = [];
  for (const r of cells) r.forEach((c, i) => widths[i] = Math.max(widths[i] ?? 0, c.length));
  return cells.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i])).join("  "))
    .join("\n");
}
