// The console's stylesheet and its one script (copy buttons). Served from this Worker, so the CSP can stay
// `'self'` with no inline code.
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

export const CONSOLE_JS = `// Copy buttons: shown only when JavaScript runs (the key is selectable in its field without it).
for (const button of document.querySelectorAll("button.copy")) {
  button.hidden = false;
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.copy);
    try {
      await navigator.clipboard.writeText(field.value);
      button.textContent = "Copied";
    } catch {
      field.select();
      button.textContent = "Press Ctrl+C";
    }
  });
}
`;

export const CONSOLE_CSS = `*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;background:#f4f5f7}
a{color:#0b57d0}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible{outline:3px solid #0b57d0;outline-offset:2px}
.top{display:flex;justify-content:space-between;align-items:center;gap:1rem;padding:.75rem 1.25rem;background:#fff;border-bottom:1px solid #dadce0;flex-wrap:wrap}
.brand{font-weight:700;text-decoration:none;color:#1a1a1a}
.sign-out{display:flex;gap:.75rem;align-items:center}
.who{color:#444;font-size:.9rem;word-break:break-all}
nav{display:flex;gap:1.25rem;padding:.5rem 1.25rem;background:#fff;border-bottom:1px solid #dadce0;overflow-x:auto}
nav a{text-decoration:none;padding:.25rem 0;color:#1a1a1a}
nav a[aria-current=page]{border-bottom:3px solid #0b57d0;font-weight:600}
main{max-width:60rem;margin:1.5rem auto;padding:1.5rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.08)}
h1{font-size:1.5rem;margin:0 0 1rem}
h2{font-size:1.15rem;margin:0 0 .5rem}
label{font-weight:600}
.fields{display:flex;flex-direction:column;gap:.4rem;max-width:24rem}
.fields button{margin-top:.8rem}
input,select{font-size:1rem;padding:.55rem .7rem;border:1px solid #80868b;border-radius:8px;background:#fff;color:#1a1a1a}
button{font-size:1rem;padding:.55rem 1.1rem;border:0;border-radius:8px;background:#0b57d0;color:#fff;font-weight:600;cursor:pointer}
button.link{background:none;color:#0b57d0;padding:0;text-decoration:underline;font-weight:400}
button.danger{background:#b3261e}
.danger-link{color:#b3261e;font-weight:600}
.inline{display:flex;flex-wrap:wrap;gap:.6rem;align-items:center;margin:.5rem 0 1rem}
.actions{display:grid;grid-template-columns:repeat(auto-fit,minmax(18rem,1fr));gap:1rem;margin-top:1.25rem}
.card{border:1px solid #dadce0;border-radius:10px;padding:1rem;margin:1rem 0}
.actions .card{margin:0}
.table-wrap{overflow-x:auto;margin:.5rem 0}
table{width:100%;border-collapse:collapse;font-size:.92rem}
caption{text-align:left;color:#444;padding:.25rem 0}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e3e3e3;white-space:nowrap}
.status{padding:.1rem .5rem;border-radius:999px;background:#e8eaed}
.status.active{background:#d7f2dd;color:#0d5b1f}.status.expiring{background:#fff0c2;color:#6a4b00}.status.revoked,.status.expired{background:#f4d5d3;color:#7d1a14}
.notice{background:#e8f0fe;padding:.75rem 1rem;border-radius:8px}
.warning{background:#fff4d6;padding:.75rem 1rem;border-radius:8px}
.error{background:#fce8e6;color:#7d1a14;padding:.75rem 1rem;border-radius:8px}
.muted{color:#555;font-size:.9rem}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.5rem 1.5rem}
.facts dt{font-weight:600}.facts dd{margin:0}
.plain{list-style:none;padding:0;margin:0}
.orgs li{margin:.5rem 0}
.secret{margin:1rem 0}
.secret .row{display:flex;gap:.5rem;margin-top:.3rem}
.secret input{flex:1;min-width:0;font-family:ui-monospace,Menlo,Consolas,monospace}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;word-break:break-all}
@media (max-width:40rem){main{margin:0;border-radius:0;padding:1rem}.facts{grid-template-columns:1fr}.facts dd{margin-bottom:.5rem}}
`;
