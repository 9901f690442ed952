// Shared by the wrangler-dev checks: ok/FAIL lines with a closing "N passed, N failed" line, and a free port.

let passed = 0;
let failed = 0;

export function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (ok) passed++;
  else failed++;
}

/** Prints the closing line and exits non-zero if anything failed. */
export function finish() {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

export { freePort } from "../../scripts/local.mjs";
