// `npm run mail [-- -n 5]`: the newest emails the local send_email binding wrote (under .wrangler/ for `npm start`,
// and payment-worker/.wrangler/ for `npm run start:payments`): when, to, subject, text, links.
import { localEmails } from "./local-emails.mjs";

const i = process.argv.indexOf("-n");
const count = i === -1 ? 3 : Number(process.argv[i + 1]) || 3;

const emails = localEmails().slice(0, count);
if (!emails.length) {
  console.log('No local emails yet. Provision an org (README, "A five-minute tour") with `npm start` running, then run this again.');
  process.exit(0);
}
for (const { path, mtime, text, subject, to } of emails) {
  const links = [...new Set(text.match(/https?:\/\/\S+/g) ?? [])];
  console.log(`── ${new Date(mtime).toISOString()}  ${path}`);
  console.log(`To:      ${to ?? "?"}`);
  console.log(`Subject: ${subject}`);
  console.log(`\n${text.trim()}\n`);
  if (links.length) console.log(`Links:\n${links.map((l) => `  ${l}`).join("\n")}\n`);
}
