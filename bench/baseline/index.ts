interface Env {
  DB: D1Database;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    if (request.method === "GET") return new Response("hello");
    const body = await request.json<{ id: string }>();
    await env.DB.prepare("INSERT INTO items (id, body) VALUES (?, ?)").bind(body.id, JSON.stringify(body)).run();
    return Response.json({ id: body.id }, { status: 201 });
  },
} satisfies ExportedHandler<Env>;
