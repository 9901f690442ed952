/** @jsxImportSource hono/jsx */
// The console's pages, rendered on the server with hono/jsx. They work without JavaScript (app.js only adds the copy
// buttons' behaviour); no inline script or style (the CSP forbids both).
import type { Child } from "hono/jsx";
import { TIER_LIMITS } from "../orgs/model";
import type { OrgKeyListRow } from "../org-self-serve/queries";
import type { AuditRow, OwnedOrg } from "./queries";

export const WINDOWS = [
  { seconds: 0, label: "now" },
  { seconds: 3600, label: "in 1 hour" },
  { seconds: 86_400, label: "in 1 day" },
  { seconds: 604_800, label: "in 7 days" },
] as const;

const KEY_LABEL = { ck_live: "Client key", sk_live: "Server key" } as const;
const STATUS_WHY: Record<string, string> = {
  suspended: "This organization is suspended by the operator: its keys are kept and work again when it is reactivated. Key actions are not available.",
  billing_suspended:
    "This organization is suspended for billing: its keys were revoked. Once payment is received, access is restored and you create new keys here.",
  revoked: "This organization was revoked: its keys no longer work and cannot be replaced.",
};

const when = (iso: string | null) => (iso ? iso.replace("T", " ").replace(/\.\d{3}Z$/, " UTC") : "—");

export function Layout(props: {
  title: string;
  children: Child;
  user?: { email: string };
  org?: { org_id: string; name: string };
  current?: "overview" | "keys" | "audit";
}) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>{props.title} · Console</title>
        <link rel="stylesheet" href="/console/app.css" />
        <script src="/console/app.js" defer></script>
      </head>
      <body>
        <header class="top">
          <a class="brand" href="/console">
            Console
          </a>
          {props.user && (
            <form method="post" action="/console/sign-out" class="sign-out">
              <span class="who">{props.user.email}</span>
              <button type="submit" class="link">
                Sign out
              </button>
            </form>
          )}
        </header>
        {props.org && (
          <nav aria-label="Organization">
            <a href={`/console/orgs/${props.org.org_id}`} aria-current={props.current === "overview" ? "page" : undefined}>
              Overview
            </a>
            <a href={`/console/orgs/${props.org.org_id}/keys`} aria-current={props.current === "keys" ? "page" : undefined}>
              Keys
            </a>
            <a href={`/console/orgs/${props.org.org_id}/audit`} aria-current={props.current === "audit" ? "page" : undefined}>
              Audit log
            </a>
          </nav>
        )}
        <main>{props.children}</main>
      </body>
    </html>
  );
}

export const SignInPage = (p: { error?: string; email?: string; notice?: string }) => (
  <Layout title="Sign in">
    <h1>Sign in</h1>
    {p.notice && (
      <p class="notice" role="status">
        {p.notice}
      </p>
    )}
    {p.error && (
      <p class="error" role="alert">
        {p.error}
      </p>
    )}
    <form method="post" action="/console/sign-in" class="fields">
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="username" required maxlength={254} value={p.email ?? ""} />
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required maxlength={128} />
      <button type="submit">Sign in</button>
    </form>
    <p>
      <a href="/console/forgot">Forgot your password?</a>
    </p>
  </Layout>
);

export const ForgotPage = (p: { sent?: boolean; error?: string }) => (
  <Layout title="Forgot your password?">
    <h1>Forgot your password?</h1>
    {p.error && (
      <p class="error" role="alert">
        {p.error}
      </p>
    )}
    {p.sent ? (
      <p class="notice" role="status">
        If an account exists for that address, we sent it a link to choose a new password. The link works once, for one hour.
      </p>
    ) : (
      <form method="post" action="/console/forgot" class="fields">
        <label for="email">Email</label>
        <input id="email" name="email" type="email" autocomplete="username" required maxlength={254} />
        <button type="submit">Send reset link</button>
      </form>
    )}
    <p>
      <a href="/console/sign-in">Back to sign in</a>
    </p>
  </Layout>
);

export const OrgPickerPage = (p: { user: { email: string }; orgs: { org_id: string; name: string; tier: string; status: string }[] }) => (
  <Layout title="Your organizations" user={p.user}>
    <h1>Your organizations</h1>
    {p.orgs.length === 0 ? (
      <p>You do not own an organization yet.</p>
    ) : (
      <ul class="orgs">
        {p.orgs.map((o) => (
          <li>
            <a href={`/console/orgs/${o.org_id}`}>{o.name}</a>{" "}
            <span class="muted">
              {o.org_id} · {o.tier} · {o.status.replace("_", " ")}
            </span>
          </li>
        ))}
      </ul>
    )}
  </Layout>
);

const StatusNote = (p: { org: OwnedOrg }) =>
  p.org.status === "active" ? null : (
    <p class="warning" role="status">
      {STATUS_WHY[p.org.status]}
    </p>
  );

export function OverviewPage(p: { user: { email: string }; org: OwnedOrg }) {
  const limit = TIER_LIMITS[p.org.tier];
  const origins = JSON.parse(p.org.allowed_origins) as string[];
  return (
    <Layout title={p.org.name} user={p.user} org={p.org} current="overview">
      <h1>{p.org.name}</h1>
      <StatusNote org={p.org} />
      <dl class="facts">
        <dt>Organization id</dt>
        <dd>
          <code>{p.org.org_id}</code>
        </dd>
        <dt>Tier</dt>
        <dd>{p.org.tier}</dd>
        <dt>Status</dt>
        <dd>{p.org.status.replace("_", " ")}</dd>
        <dt>Usage (rolling 30 days)</dt>
        <dd>
          <meter min={0} max={limit} value={Math.min(p.org.used, limit)} aria-label="Usage against the tier limit"></meter> {p.org.used.toLocaleString("en-US")}{" "}
          of {limit.toLocaleString("en-US")} interactions
        </dd>
        <dt>Allowed origins</dt>
        <dd>
          {origins.length ? (
            <ul class="plain">
              {origins.map((o) => (
                <li>
                  <code>{o}</code>
                </li>
              ))}
            </ul>
          ) : (
            "none yet"
          )}
        </dd>
      </dl>
    </Layout>
  );
}

export function KeysPage(p: {
  user: { email: string };
  org: OwnedOrg;
  keys: (OrgKeyListRow & { status: string })[];
  formId: string;
  notice?: string;
  error?: string;
}) {
  const live = p.keys.filter((k) => k.status === "active" || k.status === "expiring");
  const active = p.org.status === "active";
  return (
    <Layout title={`Keys · ${p.org.name}`} user={p.user} org={p.org} current="keys">
      <h1>Keys</h1>
      <StatusNote org={p.org} />
      {p.notice && (
        <p class="notice" role="status">
          {p.notice}
        </p>
      )}
      {p.error && (
        <p class="error" role="alert">
          {p.error}
        </p>
      )}
      {active && live.length === 0 && (
        <section class="card">
          <h2>Create your keys</h2>
          <p>
            Your organization has no live key. Create its client key (publishable: for your web pages, from your allowed origins) and its server key (secret:
            for your servers). Each is shown once.
          </p>
          <form method="post" action={`/console/orgs/${p.org.org_id}/keys/create`}>
            <input type="hidden" name="form_id" value={p.formId} />
            <button type="submit">Create keys</button>
          </form>
        </section>
      )}
      {/* biome-ignore lint/a11y/useSemanticElements: a scrollable table needs a focusable region (axe: scrollable-region-focusable); <section> is not focusable */}
      <div class="table-wrap" tabindex={0} role="region" aria-label="Keys">
        <table>
          <caption>Every key of this organization, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Type</th>
              <th scope="col">Prefix</th>
              <th scope="col">Status</th>
              <th scope="col">Created</th>
              <th scope="col">Expires</th>
              <th scope="col">Last used</th>
            </tr>
          </thead>
          <tbody>
            {p.keys.length === 0 ? (
              <tr>
                <td colspan={6}>No keys yet.</td>
              </tr>
            ) : (
              p.keys.map((k) => (
                <tr>
                  <td>{KEY_LABEL[k.key_type]}</td>
                  <td>
                    <code>
                      {k.key_type}_{k.prefix}…
                    </code>
                  </td>
                  <td>
                    <span class={`status ${k.status}`}>{k.status}</span>
                  </td>
                  <td>{when(k.created_at)}</td>
                  <td>{when(k.expires_at ?? k.revoked_at)}</td>
                  <td>{when(k.last_used_at)}</td>
                </tr>
              ))
            )}
          </tbody>
        </table>
      </div>
      {active && live.length > 0 && (
        <div class="actions">
          {(["sk_live", "ck_live"] as const).map((type) => (
            <section class="card" aria-labelledby={`actions-${type}`}>
              <h2 id={`actions-${type}`}>{KEY_LABEL[type]}</h2>
              <form method="post" action={`/console/orgs/${p.org.org_id}/keys/rotate`} class="inline">
                <input type="hidden" name="form_id" value={`${p.formId}-${type}`} />
                <input type="hidden" name="key_type" value={type} />
                <label for={`window-${type}`}>Old {KEY_LABEL[type].toLowerCase()} stops working</label>
                <select id={`window-${type}`} name="window">
                  {WINDOWS.map((w) => (
                    <option value={String(w.seconds)}>{w.label}</option>
                  ))}
                </select>
                <button type="submit">Rotate</button>
              </form>
              <a class="danger-link" href={`/console/orgs/${p.org.org_id}/keys/revoke?key_type=${type}`}>
                Revoke
              </a>
            </section>
          ))}
        </div>
      )}
    </Layout>
  );
}

export const KeysShownPage = (p: { user: { email: string }; org: OwnedOrg; minted: { type: "ck_live" | "sk_live"; plaintext: string }[]; note?: string }) => (
  <Layout title={`New keys · ${p.org.name}`} user={p.user} org={p.org} current="keys">
    <h1>{p.minted.length > 1 ? "Your new keys" : "Your new key"}</h1>
    <p class="warning" role="alert">
      <strong>Shown once.</strong> Copy {p.minted.length > 1 ? "them" : "it"} now and store {p.minted.length > 1 ? "them" : "it"} in a secret manager:{" "}
      {p.minted.length > 1 ? "they" : "it"} cannot be shown again. Leaving or reloading this page does not bring {p.minted.length > 1 ? "them" : "it"} back.
    </p>
    {p.note && <p>{p.note}</p>}
    {p.minted.map((k, i) => (
      <div class="secret">
        <label for={`key-${i}`}>{KEY_LABEL[k.type]}</label>
        <div class="row">
          <input id={`key-${i}`} type="text" readonly value={k.plaintext} spellcheck={false} autocomplete="off" />
          <button type="button" class="copy" data-copy={`key-${i}`} aria-label={`Copy the ${KEY_LABEL[k.type].toLowerCase()}`} hidden>
            Copy
          </button>
        </div>
      </div>
    ))}
    <p>
      <a href={`/console/orgs/${p.org.org_id}/keys`}>Done: back to the keys</a>
    </p>
  </Layout>
);

export const RevokeConfirmPage = (p: { user: { email: string }; org: OwnedOrg; keyType: "ck_live" | "sk_live"; formId: string }) => (
  <Layout title={`Revoke · ${p.org.name}`} user={p.user} org={p.org} current="keys">
    <h1>Revoke the {KEY_LABEL[p.keyType].toLowerCase()}?</h1>
    <p>
      Every live {KEY_LABEL[p.keyType].toLowerCase()} of <strong>{p.org.name}</strong> stops working at once, including one in its overlap window. Requests that
      use it fail until you create or rotate a new one. This cannot be undone.
    </p>
    <form method="post" action={`/console/orgs/${p.org.org_id}/keys/revoke`}>
      <input type="hidden" name="form_id" value={p.formId} />
      <input type="hidden" name="key_type" value={p.keyType} />
      <button type="submit" class="danger">
        Revoke
      </button>{" "}
      <a href={`/console/orgs/${p.org.org_id}/keys`}>Cancel</a>
    </form>
  </Layout>
);

export const AuditPage = (p: {
  user: { email: string };
  org: OwnedOrg;
  rows: AuditRow[];
  eventTypes: readonly string[];
  eventType?: string;
  older?: string;
}) => (
  <Layout title={`Audit log · ${p.org.name}`} user={p.user} org={p.org} current="audit">
    <h1>Audit log</h1>
    <form method="get" action={`/console/orgs/${p.org.org_id}/audit`} class="inline">
      <label for="event_type">Event type</label>
      <select id="event_type" name="event_type">
        <option value="">All events</option>
        {p.eventTypes.map((t) => (
          <option value={t} selected={t === p.eventType}>
            {t}
          </option>
        ))}
      </select>
      <button type="submit">Filter</button>
    </form>
    {/* biome-ignore lint/a11y/useSemanticElements: a scrollable table needs a focusable region (axe: scrollable-region-focusable); <section> is not focusable */}
    <div class="table-wrap" tabindex={0} role="region" aria-label="Events">
      <table>
        <caption>Newest first</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Event</th>
            <th scope="col">Actor</th>
            <th scope="col">Key</th>
            <th scope="col">Detail</th>
          </tr>
        </thead>
        <tbody>
          {p.rows.length === 0 ? (
            <tr>
              <td colspan={5}>No events.</td>
            </tr>
          ) : (
            p.rows.map((r) => (
              <tr>
                <td>{when(r.created_at)}</td>
                <td>
                  {r.event_type}
                  {r.count > 1 ? ` ×${r.count}` : ""}
                </td>
                <td>{r.actor}</td>
                <td>{r.key_prefix ? <code>{r.key_prefix}</code> : "—"}</td>
                <td>{r.detail ?? ""}</td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
    {p.older && (
      <p>
        <a href={p.older}>Older events</a>
      </p>
    )}
  </Layout>
);

export const MessagePage = (p: { title: string; message: string; user?: { email: string }; back?: string }) => (
  <Layout title={p.title} user={p.user}>
    <h1>{p.title}</h1>
    <p>{p.message}</p>
    {p.back && (
      <p>
        <a href={p.back}>Back</a>
      </p>
    )}
  </Layout>
);
