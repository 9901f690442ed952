/**
 * The constraint a D1 error names, if it is a UNIQUE/PRIMARY KEY violation: the "table.column, …" list SQLite
 * prints, or the index name for an expression index. D1 surfaces these as plain Errors, so the message is the API.
 */
export function uniqueViolation(err: unknown): string | null {
  const message = err instanceof Error ? err.message : String(err);
  const m = /UNIQUE constraint failed: (index '([^']+)'|[\w.]+(?:, [\w.]+)*)/.exec(message);
  return m ? (m[2] ?? m[1]) : null;
}
