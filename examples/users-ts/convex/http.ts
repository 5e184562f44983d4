import { httpRouter } from "convex/server";
import { httpAction } from "./_generated/server";
import { api } from "./_generated/api";

const http = httpRouter();

// POST /http/webhook with {"name", "email"}: 201 {"id"}, or 400 {"error"}.
http.route({
  path: "/webhook",
  method: "POST",
  handler: httpAction(async (ctx, request) => {
    let user: { name: string; email: string };
    try {
      user = await request.json();
      if (typeof user?.name !== "string" || typeof user?.email !== "string")
        throw new Error("the body needs string fields name and email");
    } catch (e) {
      return Response.json({ error: (e as Error).message }, { status: 400 });
    }
    const id = await ctx.runMutation(api.users.create_user, { name: user.name, email: user.email });
    return Response.json({ id }, { status: 201 });
  }),
});

export default http;
