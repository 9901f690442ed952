// Shared by the browser tests: ✓/✗ checks with a closing count, Debian's Chromium, and the emails the runtime wrote.
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { localEmails } from "../../scripts/local-emails.mjs";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
let passed = 0;
let failed = 0;

export async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`  ✓ ${name}`);
  } catch (err) {
    failed++;
    console.log(`  ✗ ${name}\n    ${err instanceof Error ? err.message : err}`);
  }
}

export const assert = (cond, message) => {
  if (!cond) throw new Error(message);
};

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Prints the closing line and exits non-zero if anything failed. */
export function finish() {
  console.log(`\n${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

/** Debian's Chromium, headless; exits with a hint when it is not installed. */
export function launchChromium() {
  if (!existsSync(CHROMIUM)) {
    console.error(`Chromium not found at ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium).`);
    process.exit(1);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** The text of every email written since `since` under these folders (scripts/local-emails.mjs). */
export const emails = (since, roots = [".wrangler/tmp", "payment-worker/.wrangler/tmp"]) => localEmails({ roots, since }).map((e) => e.text);

/** An email's plain text (the files are already plain text). */
export const plainText = (text) => text;
