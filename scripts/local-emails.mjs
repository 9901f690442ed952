// The emails a local send_email binding wrote: it puts each message's text in …/email-text/<id>.txt and its HTML
// (whose <title> is the subject) in …/email-html/<id>.html, under .wrangler/tmp/email/. Each text ends "This email
// was sent to <address>.". Read by `npm run mail` and the browser tests.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** Every email written at or after `since` (ms) under `roots`, newest first. */
export function localEmails({ roots = [".wrangler", "payment-worker/.wrangler"], since = 0 } = {}) {
  const found = [];
  const walk = (dir) => {
    for (const name of existsSync(dir) ? readdirSync(dir) : []) {
      const path = join(dir, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path);
      else if (name.endsWith(".txt") && path.includes("email-text") && stat.mtimeMs >= since) found.push({ path, mtime: stat.mtimeMs });
    }
  };
  for (const root of roots) walk(root);
  return found
    .sort((a, b) => b.mtime - a.mtime)
    .map(({ path, mtime }) => {
      const text = readFileSync(path, "utf8");
      const htmlPath = path.replace("email-text", "email-html").replace(/\.txt$/, ".html");
      const subject = existsSync(htmlPath) ? (/<title>(.*?)<\/title>/.exec(readFileSync(htmlPath, "utf8"))?.[1] ?? "") : "";
      return { path, mtime, text, subject, to: /This email was sent to (\S+?)\.$/m.exec(text)?.[1] ?? null };
    });
}
