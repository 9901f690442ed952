// `npm run mail [-- -n 5]`: the newest emails the local send_email binding wrote (under .wrangler/ for `npm start`,
// and payment-worker/.wrangler/ for `npm run start:payments`): when, to, subject, text, links. The binding writes each
// message's text to …/email-text/<id>.txt and its HTML (whose <title> is the subject) to …/email-html/<id>.html.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

const i = process.argv.indexOf("-n");
const count = i === -1 ? 3 : Number(process.argv[i + 1]) || 3;

function textFiles(dir) {
  let out = [];
  let entries = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out = out.concat(textFiles(path));
    else if (e.name.endsWith(".txt") && path.includes("email-text")) out.push({ path, mtime: statSync(path).mtimeMs });
  }
  return out;
}

const files = [...textFiles(".wrangler"), ...textFiles("payment-worker/.wrangler")].sort((a, b) => b.mtime - a.mtime).slice(0, count);
if (!files.length) {
  console.log('No local emails yet. Provision an org (README, "Try it") with `npm start` running, then run this again.');
  process.exit(0);
}
for (const { path, mtime } of files) {
  const text = readFileSync(path, "utf8").trim();
  const htmlPath = path.replace("email-text", "email-html").replace(/\.txt$/, ".html");
  const subject = existsSync(htmlPath) ? (/<title>(.*?)<\/title>/.exec(readFileSync(htmlPath, "utf8"))?.[1] ?? "") : "";
  const to = /This email was sent to (\S+?)\.$/m.exec(text)?.[1] ?? "?";
  const links = [...new Set(text.match(/https?:\/\/\S+/g) ?? [])];
  console.log(`── ${new Date(mtime).toISOString()}  ${path}`);
  console.log(`To:      ${to}`);
  console.log(`Subject: ${subject}`);
  console.log(`\n${text}\n`);
  if (links.length) console.log(`Links:\n${links.map((l) => `  ${l}`).join("\n")}\n`);
}
