// What local runs pass to `wrangler dev` on top of the one wrangler.toml: the public base URL for the port in use (so
// the welcome email's set-password link and /docs' "Try it out" point at this server).
import { createServer } from "node:net";

export const DEFAULT_PORT = 8787;

/** The --port given in `args` (`--port N` or `--port=N`), else the default. */
export function portOf(args, fallback = DEFAULT_PORT) {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--port" && args[i + 1]) return Number(args[i + 1]);
    const m = /^--port=(\d+)$/.exec(args[i]);
    if (m) return Number(m[1]);
  }
  return fallback;
}

/**
 * `--var` flags for a local service on `port` (wrangler gives --var to the first worker of a `dev` only): its public
 * URL, and GitHub's secret scanning keys from the stand-in `npm run scan:report` serves while it reports.
 */
export const localVars = (port) => [
  "--var",
  `PUBLIC_BASE_URL:http://localhost:${port}`,
  "--var",
  "GITHUB_SECRET_SCANNING_KEYS_URL:http://127.0.0.1:8799/meta/public_keys/secret_scanning",
];

export const wranglerEnv = { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false" };

/** A TCP port nobody listens on now (for servers the tests and benchmarks start). */
export const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
