// `npm run mail [-- -n 5]`: the newest emails the local send_email binding wrote (.eml files under .wrangler/ for
// `npm start`, and payment-worker/.wrangler/ for `npm run start:payments`), decoded: when, to, subject, text, links.
// So a newcomer can follow the set-password link without decoding base64 by hand.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import PostalMime from "postal-mime";

const i = process.argv.indexOf("-n");
const count = i === -1 ? 3 : Number(process.argv[i + 1]) || 3;

function emlFiles(dir) {
  let out = [];
  let entries = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out = out.concat(emlFiles(path));
    else if (e.name.endsWith(".eml")) out.push({ path, mtime: statSync(path).mtimeMs });
  }
  return out;
}

const files = [...emlFiles(".wrangler"), ...emlFiles("payment-worker/.wrangler")].sort((a, b) => b.mtime - a.mtime).slice(0, count);
if (!files.length) {
  console.log('No local emails yet. Provision an org (README, "Try the partner API") with `npm start` running, then run this again.');
  process.exit(0);
}
for (const { path, mtime } of files) {
  const email = await PostalMime.parse(readFileSync(path));
  const text = (email.text ?? "").trim();
  const links = [...new Set(text.match(/https?:\/\/\S+/g) ?? [])];
  console.log(`── ${new Date(mtime).toISOString()}  ${path}`);
  console.log(`To:      ${email.to?.map((t) => t.address).join(", ")}`);
  console.log(`From:    ${email.from?.name ? `${email.from.name} <${email.from.address}>` : email.from?.address}`);
  console.log(`Subject: ${email.subject}`);
  console.log(`\n${text}\n`);
  if (links.length) console.log(`Links:\n${links.map((l) => `  ${l}`).join("\n")}\n`);
}
