// `npm start -- --port N` and `npm run start:payments -- --port N`, run as a newcomer runs them (the real scripts,
// their .dev.vars and local state): on port N the welcome email's set-password link, the OpenAPI `servers` entry
// (what /docs' "Try it out" calls) and the payment worker all answer on N.
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { check, finish, freePort } from "./harness.mjs";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function withScript(script, port, probe, fn) {
  const child = spawn("npm", ["run", script, "--", "--port", String(port)], {
    env: { ...process.env, CI: "1" },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = { log: "" };
  child.stdout.on("data", (d) => (out.log += d));
  child.stderr.on("data", (d) => (out.log += d));
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`http://localhost:${port}${probe}`)).ok) break;
      } catch {}
      if (i > 240) throw new Error(`${script} did not answer on ${port}:\n${out.log}`);
      await sleep(500);
    }
    return await fn(`http://localhost:${port}`, out);
  } finally {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
    if (child.exitCode === null) await new Promise((r) => child.on("exit", r));
  }
}

const port = await freePort();
await withScript("start", port, "/", async (base, out) => {
  const doc = await (await fetch(`${base}/openapi.json`)).json();
  check(doc.servers?.[0]?.url === base, `/openapi.json names this server (${doc.servers?.[0]?.url}) for /docs' "Try it out"`);
  const docs = await fetch(`${base}/docs/`);
  check(docs.ok && /connect-src 'self'/.test(docs.headers.get("content-security-policy") ?? ""), "/docs answers, and its CSP allows calls to this origin");

  const secrets = Object.fromEntries(
    readFileSync(".dev.vars", "utf8")
      .split("\n")
      .map((l) => /^([A-Z0-9_]+)=(.*)$/.exec(l))
      .filter(Boolean)
      .map((m) => [m[1], m[2]]),
  );
  const post = (path, headers, body) =>
    fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  const partner = await (
    await post("/v1/admin/partners", { "x-api-key": secrets.MASTER_ADMIN_KEY_PARTNER_ADMIN, "idempotency-key": `any-port-${port}` }, { name: "Any Port" })
  ).json();
  const email = `owner-${port}-${Date.now()}@any-port.example.com`;
  const res = await post("/api/v1/partner/organizations/", { "x-kelviq-partner-key": partner.partner_key }, { externalId: `any-port-${Date.now()}`, email });
  check(res.status === 201, `provisioned an org (${res.status})`);
  let link;
  for (let i = 0; i < 60 && !link; i++) {
    await sleep(500);
    // The local send_email binding logs each message's text file ("Text: …/email-text/<id>.txt").
    for (const path of out.log.matchAll(/Text: (\S+\.txt)/g)) {
      const text = readFileSync(path[1], "utf8");
      if (!text.includes(`This email was sent to ${email}.`)) continue;
      link = /(\S+\/set-password#token=\S+)/.exec(text)?.[1];
    }
  }
  check(link?.startsWith(`${base}/set-password#token=`), `the welcome email's link uses port ${port}: ${link?.replace(/#token=.*/, "#token=…")}`);

  // The ops CLI, on the typed client, reading the master keys from .dev.vars (a local service).
  const ops = (...a) => spawnSync("npm", ["run", "--silent", "ops", "--", ...a, "--base-url", base], { encoding: "utf8" });
  const opsOrg = `org_ops_${port}_${Date.now().toString(36)}`;
  const made = ops("create-org", opsOrg, "--name", "Ops Co", "--origins", "https://ops.example.com");
  check(
    made.status === 0 && /"server_api_key": "sk_live_/.test(made.stdout),
    `npm run ops -- create-org prints the minted keys once (${made.stderr.trim().split("\n").pop()})`,
  );
  const suspended = ops("suspend", opsOrg);
  const usage = ops("usage", opsOrg);
  check(
    /"suspended": true/.test(suspended.stdout) && /"status": "suspended"/.test(usage.stdout) && !/_live_/.test(usage.stdout),
    "npm run ops -- suspend, then usage: suspended, and no key printed",
  );

  // A leaked server key, reported the way GitHub would (signed by a local key that npm start trusts): revoked.
  const created = await (
    await post(
      "/v1/admin/org/create",
      { "x-api-key": secrets.MASTER_ADMIN_KEY_ORG_CREATE, "idempotency-key": `scan-${port}-${Date.now()}` },
      {
        org_id: `org_scan_${port}_${Date.now().toString(36)}`,
        name: "Scan Co",
        domain: "general",
        tier: "starter",
        allowed_origins: "https://scan.example.com",
      },
    )
  ).json();
  const report = spawnSync("npm", ["run", "--silent", "scan:report", "--", created.server_api_key, "--port", String(port)], { encoding: "utf8" });
  check(/→ 200 .*"true_positive"/.test(report.stdout), `npm run scan:report answers true_positive: ${report.stdout.trim() || report.stderr.trim()}`);
  const after = await fetch(`${base}/v1/admin/keys`, { headers: { "x-api-key": created.server_api_key } });
  check(after.status === 401, `the reported server key no longer works (${after.status})`);
});

const paymentsPort = await freePort();
await withScript("start:payments", paymentsPort, "/", async (base) => {
  const health = await (await fetch(`${base}/`)).json();
  check(health.service === "payment-worker", `npm run start:payments -- --port ${paymentsPort} serves the payment worker there`);
  // End to end: a signed checkout, its line items read through the Stripe SDK from the local stand-in.
  const orgId = `org_any_port_${paymentsPort}_${Date.now().toString(36)}`;
  const sent = spawnSync("npm", ["run", "--silent", "stripe:send", "--", "checkout.session.completed", "--port", String(paymentsPort), "--org", orgId], {
    encoding: "utf8",
  });
  check(
    /→ 200 .*"action":"org_created"/.test(sent.stdout),
    `npm run stripe:send -- checkout.session.completed provisions ${orgId}: ${sent.stdout.trim() || sent.stderr.trim()}`,
  );
  // The payment walk-through (docs/payment-worker.md), sent back to back: each send is stamped after the last, so they apply in order.
  const send = (type) =>
    spawnSync("npm", ["run", "--silent", "stripe:send", "--", type, "--port", String(paymentsPort), "--org", orgId], { encoding: "utf8" }).stdout.trim();
  const failed = send("invoice.payment_failed");
  const paid = send("invoice.paid");
  check(
    /"billing_suspended"/.test(failed) && /"billing_rotated"/.test(paid),
    `invoice.payment_failed then invoice.paid, back to back: suspended, then restored (${failed} / ${paid})`,
  );
});
finish();
