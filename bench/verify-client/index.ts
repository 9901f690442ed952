import type { KeyVerifier } from "../../src/verify/entrypoint";
import type { Hello } from "../hello-worker/index";

interface Env {
  KEYS: Service<KeyVerifier>;
  HELLO: Service<Hello>;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/hello") return new Response("hello");
    if (url.pathname === "/hello-rpc") return Response.json(await env.HELLO.hello());
    const result = await env.KEYS.verifyKey(url.searchParams.get("key") ?? "");
    return Response.json(result, { status: result.valid ? 200 : 401 });
  },
} satisfies ExportedHandler<Env>;
