/** Measurements a test prints for the record (the lint forbids console). */

const encoder = new TextEncoder();

/** Print one line to standard output. */
export function report(line: string): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}
