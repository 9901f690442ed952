// Browser test of the owner console, end to end, as a newcomer runs it: `npm run start:payments` (the payment worker,
// the service beside it and on a port of its own, the Stripe stand-in), on a fresh local state. A signed
// checkout.session.completed → the welcome email → set a password → sign in with the keyboard → create keys → the
// server key works; rotate with a window and see both keys; revoke; the audit log shows it all; sign out, and a
// second browser with the old cookie is signed out too; an idle session ends. Then a partner's org reaches its
// owner's console. Every page passes axe-core (no serious or critical violation) at desktop and phone widths, and no
// email the runtime wrote holds a key. Screenshots go to test-results/ (and to docs/ with --update-docs).
// Run: npm run test:browser
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { executeSql } from "../../bench/lib.mjs";
import { freePort } from "../../scripts/local.mjs";
import { assert, check, emails, finish, launchChromium, plainText, sleep } from "./harness.mjs";

const OUT = "test-results";
const STATE = ".wrangler/console-browser-test";
const UPDATE_DOCS = process.argv.includes("--update-docs");
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
mkdirSync(OUT, { recursive: true });

async function linkFor(address, since) {
  for (let i = 0; i < 150; i++) {
    const mail = emails(since).find((raw) => raw.includes(address));
    const link = mail && /(http:\/\/\S+\/set-password#token=[A-Za-z0-9_-]{43})/.exec(plainText(mail))?.[1];
    if (link) return link;
    await sleep(200);
  }
  throw new Error(`no set-password email to ${address}`);
}

/** axe-core in the page (evaluated, so the page's CSP stays as it is): no serious or critical violation. */
async function accessible(page, what) {
  await page.evaluate(AXE);
  const { violations } = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ["violations"] }));
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert(bad.length === 0, `${what}: ${bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`).join("; ")}`);
}
async function shot(page, name) {
  await page.screenshot({ path: `${OUT}/${name}.png`, fullPage: true });
  if (UPDATE_DOCS) copyFileSync(`${OUT}/${name}.png`, `docs/${name}.png`);
}
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

const started = Date.now();
const stamp = Date.now().toString(36);
rmSync(STATE, { recursive: true, force: true });
const [paymentsPort, servicePort] = [await freePort(), await freePort()];
const run = spawn("node", ["scripts/start-payments.mjs", "--port", String(paymentsPort), "--service-port", String(servicePort)], {
  env: { ...process.env, LOCAL_STATE: STATE, CI: "1" },
  stdio: ["ignore", "pipe", "pipe"],
  detached: true,
});
let log = "";
run.stdout.on("data", (d) => (log += d));
run.stderr.on("data", (d) => (log += d));
const service = `http://localhost:${servicePort}`;
for (let i = 0; ; i++) {
  try {
    if ((await fetch(`${service}/`)).ok && (await fetch(`http://localhost:${paymentsPort}/`)).ok) break;
  } catch {}
  if (i > 400) throw new Error(`npm run start:payments did not start:\n${log}`);
  await sleep(300);
}
const SECRETS = Object.fromEntries(
  readFileSync(".dev.vars", "utf8")
    .split("\n")
    .map((l) => /^([A-Z0-9_]+)=(.*)$/.exec(l))
    .filter(Boolean)
    .map((m) => [m[1], m[2]]),
);
const browser = await launchChromium();
const owner = `owner.${stamp}@console-test.example.com`;
const orgId = `org_console_${stamp}`;
const PASSWORD = "correct horse battery staple";
let serverKey;
let signedInCookies;

try {
  console.log("the owner console, from a paid checkout");
  await check("a signed checkout.session.completed provisions the org (no keys) and emails a set-password link, no key", async () => {
    const sent = spawnSync(
      "node",
      ["payment-worker/scripts/send-event.mjs", "checkout.session.completed", "--port", String(paymentsPort), "--org", orgId, "--email", owner],
      { encoding: "utf8" },
    );
    assert(/→ 200 .*"action":"org_created"/.test(sent.stdout), `stripe:send: ${sent.stdout}${sent.stderr}`);
    const link = await linkFor(owner, started);
    assert(link.startsWith(`${service}/set-password#token=`), `the link points at ${link.replace(/#.*/, "")}, not the service's own port`);
    globalThis.link = link;
  });

  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();

  await check("set the password from the link, then sign in with the keyboard only", async () => {
    await page.goto(globalThis.link);
    await page.locator("#form").waitFor({ state: "visible" });
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press("Tab");
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press("Enter");
    await page.locator("#message").filter({ hasText: "Your password is set" }).waitFor();
    await page.goto(`${service}/console/sign-in`);
    await accessible(page, "sign-in");
    await shot(page, "console-sign-in");
    await page.getByLabel("Email").focus();
    await page.keyboard.type(owner);
    await page.keyboard.press("Tab");
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press("Enter");
    await page.waitForURL(`${service}/console/orgs/${orgId}`);
    const cookie = (await context.cookies()).find((c) => c.name === "__Host-console");
    assert(cookie?.httpOnly && cookie.secure && cookie.sameSite === "Lax", `session cookie: ${JSON.stringify(cookie)}`);
  });

  await check("overview: org id, tier, status, usage, origins", async () => {
    const text = await page.locator("main").textContent();
    for (const want of [orgId, "standard", "active", "of 100,000 interactions", "https://acme.example.com"])
      assert(text.includes(want), `overview lacks ${want}`);
    await accessible(page, "overview");
    await shot(page, "console-overview");
  });

  await check("create keys: shown once; the server key works", async () => {
    await page.getByRole("link", { name: "Keys" }).click();
    await accessible(page, "keys (empty)");
    const [created] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith("/keys/create") && r.request().method() === "POST"),
      page.getByRole("button", { name: "Create keys" }).click(),
    ]);
    await page.getByText("Shown once.").waitFor();
    serverKey = await page.getByRole("textbox", { name: "Server key" }).inputValue();
    assert(/^sk_live_/.test(serverKey), `no server key on the page: ${serverKey}`);
    const res = await fetch(`${service}/v1/admin/keys`, { headers: { "x-api-key": serverKey } });
    assert(res.status === 200, `the new server key answered ${res.status}`);
    const cacheControl = created.headers()["cache-control"];
    assert(cacheControl === "no-store", `cache-control ${cacheControl}`);
    await accessible(page, "keys shown once");
    await shot(page, "console-keys-created");
  });

  await check("rotate the server key with a 1-hour window: both keys in the inventory, both work", async () => {
    await page.getByRole("link", { name: "Done: back to the keys" }).click();
    const server = page.getByRole("region", { name: "Server key" });
    await server.getByLabel("Old server key stops working").selectOption({ label: "in 1 hour" });
    await server.getByRole("button", { name: "Rotate" }).click();
    const newKey = await page.getByRole("textbox", { name: "Server key" }).inputValue();
    assert(newKey !== serverKey && /^sk_live_/.test(newKey), "no new server key");
    await page.getByRole("link", { name: "Done: back to the keys" }).click();
    const rows = await page.locator("tbody tr").allInnerTexts();
    assert(rows.filter((r) => r.includes("Server key") && r.includes("expiring")).length === 1, `no expiring server key: ${rows.join(" / ")}`);
    assert(rows.filter((r) => r.includes("Server key") && r.includes("active")).length === 1, "no active server key");
    for (const key of [serverKey, newKey])
      assert((await fetch(`${service}/v1/admin/keys`, { headers: { "x-api-key": key } })).status === 200, "a server key does not work in the window");
    assert(
      (await fetch(`${service}/v1/admin/key/rotate`, { method: "POST", headers: { "x-api-key": serverKey } })).status === 403,
      "the old key could still rotate",
    );
    serverKey = newKey;
    await accessible(page, "keys inventory");
    await shot(page, "console-keys");
  });

  await check("revoke the client key, after a confirmation", async () => {
    await page.getByRole("region", { name: "Client key" }).getByRole("link", { name: "Revoke" }).click();
    await accessible(page, "revoke confirmation");
    await page.getByRole("button", { name: "Revoke" }).click();
    await page.getByText("Revoked: the client key no longer works.").waitFor();
  });

  await check("the audit log shows the console's actions, filtered by type", async () => {
    await page.getByRole("link", { name: "Audit log" }).click();
    const text = await page.locator("tbody").textContent();
    for (const event of ["KEYS_CREATED", "KEY_ROTATED", "KEY_REVOKED", "ORG_CREATED"]) assert(text.includes(event), `no ${event}`);
    await accessible(page, "audit log");
    await shot(page, "console-audit");
    await page.getByLabel("Event type").selectOption("KEY_REVOKED");
    await page.getByRole("button", { name: "Filter" }).click();
    const filtered = await page.locator("tbody").textContent();
    assert(filtered.includes("KEY_REVOKED") && !filtered.includes("KEYS_CREATED"), "the filter did not filter");
  });

  await check("a phone-sized screen: every page fits and passes axe-core", async () => {
    const phone = await browser.newContext(PHONE);
    await phone.addCookies(await context.cookies());
    const p = await phone.newPage();
    for (const [path, name] of [
      [`/console/orgs/${orgId}`, "console-overview-phone"],
      [`/console/orgs/${orgId}/keys`, "console-keys-phone"],
      [`/console/orgs/${orgId}/audit`, "console-audit-phone"],
    ]) {
      await p.goto(`${service}${path}`);
      await accessible(p, name);
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert(overflow <= 1, `${name} scrolls sideways by ${overflow}px`);
      await shot(p, name);
    }
    await phone.close();
  });

  await check("sign out: a second browser holding the old cookie is signed out too", async () => {
    signedInCookies = await context.cookies();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/console\/sign-in/);
    const other = await browser.newContext();
    await other.addCookies(signedInCookies);
    const p = await other.newPage();
    await p.goto(`${service}/console/orgs/${orgId}/keys`);
    assert(p.url().endsWith("/console/sign-in"), `the old cookie still opened ${p.url()}`);
    await other.close();
  });

  await check("an idle session (30 minutes) ends", async () => {
    await page.getByLabel("Email").fill(owner);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${service}/console/orgs/${orgId}`);
    executeSql(STATE, `UPDATE console_sessions SET last_seen_at = '${new Date(Date.now() - 31 * 60_000).toISOString()}' WHERE ended_at IS NULL;`);
    await page.reload();
    assert(page.url().endsWith("/console/sign-in"), `an idle session still opened ${page.url()}`);
  });

  await check("a failed sign-in says one thing, whatever was wrong", async () => {
    for (const [email, password] of [
      [owner, "not the password at all"],
      [`nobody.${stamp}@example.com`, PASSWORD],
    ]) {
      await page.getByLabel("Email").fill(email);
      await page.getByLabel("Password").fill(password);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("alert").filter({ hasText: "The email or password is not right." }).waitFor();
    }
    await accessible(page, "sign-in failed");
  });

  console.log("a partner's org, in its owner's console");
  await check("partner provision → welcome email → password → console, with the org's keys listed", async () => {
    const since = Date.now();
    const partner = await (
      await fetch(`${service}/v1/admin/partners`, {
        method: "POST",
        headers: { "x-api-key": SECRETS.MASTER_ADMIN_KEY_PARTNER_ADMIN, "content-type": "application/json", "idempotency-key": `console-${stamp}` },
        body: JSON.stringify({ name: "Console Partner" }),
      })
    ).json();
    const partnerOwner = `partner.${stamp}@console-test.example.com`;
    const res = await fetch(`${service}/api/v1/partner/organizations/`, {
      method: "POST",
      headers: { "x-kelviq-partner-key": partner.partner_key, "content-type": "application/json" },
      body: JSON.stringify({ externalId: `console-${stamp}`, email: partnerOwner, businessName: "Partner Customer Co" }),
    });
    assert(res.status === 201, `provision answered ${res.status}`);
    const ctx = await browser.newContext(PHONE);
    const p = await ctx.newPage();
    await p.goto(await linkFor(partnerOwner, since));
    await p.locator("#form").waitFor({ state: "visible" });
    await p.fill("#password", PASSWORD);
    await p.fill("#confirm", PASSWORD);
    await p.keyboard.press("Enter");
    await p.locator("#message").filter({ hasText: "Your password is set" }).waitFor();
    await p.goto(`${service}/console/sign-in`);
    await p.getByLabel("Email").fill(partnerOwner);
    await p.getByLabel("Password").fill(PASSWORD);
    await p.getByRole("button", { name: "Sign in" }).click();
    await p.getByRole("heading", { name: "Partner Customer Co" }).waitFor();
    await p.getByRole("link", { name: "Keys" }).click();
    const rows = await p.locator("tbody tr").allInnerTexts();
    assert(rows.length === 2 && rows.every((r) => r.includes("active")), `the partner org's keys: ${rows.join(" / ")}`);
    await ctx.close();
  });

  await check("no email the runtime wrote holds a key", async () => {
    const all = emails(started);
    assert(all.length >= 2, `only ${all.length} emails were written`);
    for (const raw of all) assert(!/(ck_live_|sk_live_|kvqp_)/.test(raw + plainText(raw)), "an email holds a key");
  });
} finally {
  await browser.close();
  try {
    process.kill(-run.pid, "SIGTERM");
  } catch {}
  await sleep(500);
}
finish();
