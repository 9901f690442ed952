// The set-password page: self-contained (no external scripts, fonts or CDNs), served with a strict CSP. The token
// travels in the URL fragment, which browsers never send to servers or in a Referer.

export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
  "form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Set your password</title>
<link rel="stylesheet" href="/set-password/app.css">
<script src="/set-password/app.js" defer></script>
</head>
<body>
<main>
  <h1>Set your password</h1>
  <p id="intro">Choose a password for your account: 12 to 128 characters.</p>
  <form id="form" novalidate hidden>
    <label for="password">New password</label>
    <input id="password" name="password" type="password" autocomplete="new-password" minlength="12" maxlength="128" required aria-describedby="hint message">
    <p id="hint" class="hint">At least 12 characters. A long phrase is easiest to remember.</p>
    <label for="confirm">Confirm password</label>
    <input id="confirm" name="confirm" type="password" autocomplete="new-password" required aria-describedby="message">
    <button id="submit" type="submit">Set password</button>
  </form>
  <p id="message" role="status" aria-live="polite"></p>
</main>
</body>
</html>`;

export const PAGE_CSS = `*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;background:#f4f5f7}
main{max-width:26rem;margin:3rem auto;padding:2rem 1.5rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.08)}
h1{font-size:1.5rem;margin:0 0 .5rem}
label{display:block;font-weight:600;margin-top:1rem}
input{width:100%;font-size:1rem;padding:.7rem .8rem;margin-top:.3rem;border:1px solid #9aa0a6;border-radius:8px}
input:focus{outline:3px solid #2f6fed;outline-offset:1px;border-color:#2f6fed}
.hint{font-size:.875rem;color:#555;margin:.3rem 0 0}
button{width:100%;margin-top:1.5rem;padding:.8rem;font-size:1rem;font-weight:600;color:#fff;background:#2f6fed;border:0;border-radius:8px;cursor:pointer}
button:focus-visible{outline:3px solid #1a1a1a;outline-offset:2px}
button[disabled]{opacity:.6;cursor:progress}
#message{min-height:1.5rem;margin:1rem 0 0;font-weight:600}
#message.error{color:#b00020}
#message.ok{color:#0a7a33}
@media (max-width:480px){main{margin:0;border-radius:0;min-height:100vh;box-shadow:none}}`;

export const PAGE_JS = `"use strict";
(function () {
  var MIN = 12, MAX = 128;
  var form = document.getElementById("form");
  var pw = document.getElementById("password");
  var confirm = document.getElementById("confirm");
  var button = document.getElementById("submit");
  var message = document.getElementById("message");
  var token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
  var MESSAGES = {
    TOKEN_USED: "This link has already been used. If you did not set your password, ask for a new link.",
    TOKEN_EXPIRED: "This link has expired. Ask for a new link.",
    TOKEN_INVALID: "This link is not valid. Check that you opened the whole link from the email.",
    RATE_LIMITED: "Too many attempts. Wait a minute and try again."
  };
  function say(text, kind) { message.textContent = text; message.className = kind || ""; }
  function length(s) { return Array.from(s).length; }
  function post(path, body) {
    return fetch(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), credentials: "omit", referrerPolicy: "no-referrer" })
      .then(function (res) { return res.json().then(function (json) { return { ok: res.ok, json: json }; }); });
  }
  function fail(json) { say(MESSAGES[json.error] || json.message || "Something went wrong. Try again.", "error"); }
  if (!token) { say(MESSAGES.TOKEN_INVALID, "error"); return; }
  [pw, confirm].forEach(function (input) { input.addEventListener("input", function () { if (message.className === "error") say(""); }); });
  history.replaceState(null, "", location.pathname); // the token leaves the address bar
  post("/api/v1/auth/set-password/check", { token: token }).then(function (r) {
    if (!r.ok) return fail(r.json);
    form.hidden = false;
    pw.focus();
  }, function () { say("Could not reach the server. Check your connection and reload.", "error"); });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var p = pw.value;
    if (length(p) < MIN) { say("Your password is too short: use at least " + MIN + " characters.", "error"); pw.focus(); return; }
    if (length(p) > MAX) { say("Your password is too long: use at most " + MAX + " characters.", "error"); pw.focus(); return; }
    if (p !== confirm.value) { say("The two passwords do not match.", "error"); confirm.focus(); return; }
    button.disabled = true;
    say("Saving…");
    post("/api/v1/auth/set-password", { token: token, password: p }).then(function (r) {
      button.disabled = false;
      if (!r.ok) return fail(r.json);
      form.hidden = true;
      document.getElementById("intro").hidden = true;
      say("Your password is set, and this link is now used up. You can close this page.", "ok");
    }, function () { button.disabled = false; say("Could not reach the server. Try again.", "error"); });
  });
})();`;
