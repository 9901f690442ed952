// Browser test of owner onboarding, end to end against the real service (`wrangler dev --env local`, as npm start):
// provision through the partner API, read the link from the email the send_email binding wrote, open it in
// Debian's Chromium (playwright-core), set a password with the keyboard on a phone-sized screen, see success; open
// the link again and see that it is used. Then the API reference at /docs renders every route with no request
// leaving the machine. Screenshots go to test-results/. Run: npm run test:browser
import { mkdirSync } from "node:fs";
import { freshDatabase, SECRETS, startWorker } from "../../bench/lib.mjs";
import { assert, check, emails, finish, launchChromium, plainText } from "./harness.mjs";

const OUT = "test-results";
mkdirSync(OUT, { recursive: true });
/** Emails to `address` since `since`. */
const emailsTo = (address, since) => emails(since, [".wrangler/tmp"]).filter((text) => text.includes(`This email was sent to ${address}.`));

const started = Date.now();
const stamp = Date.now().toString(36);
const owner = `owner.${stamp}@browser-test.example.com`;
freshDatabase(".wrangler/browser-test");
const worker = await startWorker({ persistTo: ".wrangler/browser-test", vars: { PUBLIC_BASE_URL: "http://127.0.0.1:PORT" } });
const browser = await launchChromium();
let link;
try {
  console.log("set-password in a browser");
  await check("provision an org through the partner API", async () => {
    const partner = await fetch(`${worker.url}/v1/admin/partners`, {
      method: "POST",
      headers: { "x-api-key": SECRETS.MASTER_ADMIN_KEY_PARTNER_ADMIN, "content-type": "application/json", "idempotency-key": `browser-${stamp}` },
      body: JSON.stringify({ name: "Browser Test Partner" }),
    }).then((r) => r.json());
    const res = await fetch(`${worker.url}/api/v1/partner/organizations/`, {
      method: "POST",
      headers: { "x-kelviq-partner-key": partner.partner_key, "content-type": "application/json" },
      body: JSON.stringify({ externalId: `browser-${stamp}`, email: owner, businessName: "Browser Test Co" }),
    });
    assert(res.status === 201, `provision answered ${res.status}`);
  });

  await check("the welcome email arrives with the link, and no API key", async () => {
    let mails = [];
    for (let i = 0; i < 100 && mails.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 200));
      mails = emailsTo(owner, started);
    }
    assert(mails.length === 1, `expected one email to ${owner}, found ${mails.length}`);
    const text = plainText(mails[0]);
    assert(text, "the email has no text/plain part");
    link = /(http:\/\/\S+\/set-password#token=[A-Za-z0-9_-]{43})/.exec(text)?.[1];
    assert(link, "no set-password link in the email");
    assert(text.includes("Browser Test Co"), "the email does not name the org");
    assert(!/(ck_live_|sk_live_|kvqp_)[0-9A-Z]{8}_?[0-9A-Z]{18}/.test(mails[0]), "an API key is in the email");
  });

  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  const message = page.locator("#message");

  await check("the page opens with the form focused, the token out of the address bar", async () => {
    await page.goto(link);
    await page.locator("#form").waitFor({ state: "visible" });
    assert((await page.evaluate(() => document.activeElement?.id)) === "password", "the password field is not focused");
    assert(!page.url().includes("token="), "the token is still in the address bar");
    const csp = (await page.request.get(`${worker.url}/set-password`)).headers()["content-security-policy"];
    assert(csp?.includes("default-src 'none'"), "no strict Content-Security-Policy");
  });

  await check("too short, then mismatch: clear messages", async () => {
    await page.keyboard.type("short");
    await page.keyboard.press("Tab");
    await page.keyboard.type("short");
    await page.keyboard.press("Enter");
    await message.filter({ hasText: "too short" }).waitFor();
    await page.fill("#password", "correct horse battery staple");
    await page.fill("#confirm", "correct horse battery stapler");
    await page.keyboard.press("Enter");
    await message.filter({ hasText: "do not match" }).waitFor();
  });

  await check("a good password, with the keyboard only: success", async () => {
    await page.fill("#password", "");
    await page.fill("#confirm", "");
    await page.focus("#password");
    await page.keyboard.type("correct horse battery staple");
    await page.keyboard.press("Tab");
    await page.keyboard.type("correct horse battery staple");
    await page.screenshot({ path: `${OUT}/set-password-form.png` });
    await page.keyboard.press("Tab");
    await page.keyboard.press("Enter");
    await message.filter({ hasText: "Your password is set" }).waitFor();
    await page.screenshot({ path: `${OUT}/set-password-success.png` });
  });

  await check("the same link again: already used", async () => {
    const again = await context.newPage();
    await again.goto(link);
    await again.locator("#message").filter({ hasText: "already been used" }).waitFor();
    assert(!(await again.locator("#form").isVisible()), "the form is shown for a used link");
    await again.screenshot({ path: `${OUT}/set-password-used.png` });
  });

  console.log("API reference at /docs, offline");
  await check("/docs renders every route from /openapi.json, with no request leaving the machine", async () => {
    const docs = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const outside = [];
    await docs.route("**/*", (route) => {
      const url = new URL(route.request().url());
      if (url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.protocol === "data:") return route.continue();
      outside.push(url.href);
      return route.abort();
    });
    await docs.goto(`${worker.url}/docs/`);
    await docs.locator(".opblock").first().waitFor({ timeout: 20_000 });
    const spec = await (await fetch(`${worker.url}/openapi.json`)).json();
    const operations = Object.values(spec.paths).reduce((n, item) => n + Object.keys(item).length, 0);
    const rendered = await docs.locator(".opblock").count();
    assert(rendered === operations, `rendered ${rendered} operations, the document has ${operations}`);
    assert(outside.length === 0, `requests left the machine: ${outside.join(", ")}`);
    await docs.screenshot({ path: `${OUT}/docs.png` });
  });
} finally {
  await browser.close();
  worker.stop();
}
finish();
