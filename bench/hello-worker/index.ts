import { WorkerEntrypoint } from "cloudflare:workers";

export class Hello extends WorkerEntrypoint {
  async hello(): Promise<{ hello: true }> {
    return { hello: true };
  }
}

export default {
  fetch: () => new Response("hello"),
};
