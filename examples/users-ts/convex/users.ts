// The users example (examples/users, in Rust) in TypeScript: the same
// functions under the same names, written as any Convex app writes them.
import { ConvexError, v } from "convex/values";
import { paginationOptsValidator } from "convex/server";
import { action, internalMutation, mutation, query } from "./_generated/server";
import { api, internal } from "./_generated/api";

export const get_user = query({
  args: { id: v.id("users") },
  handler: async (ctx, { id }) => await ctx.db.get(id),
});

export const create_user = mutation({
  args: { name: v.string(), email: v.string() },
  handler: async (ctx, args) => await ctx.db.insert("users", args),
});

export const send_webhook = action({
  args: { url: v.string(), data: v.string() },
  handler: async (_ctx, { url, data }) => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: data,
    });
    if (response.status !== 200) throw new Error("Webhook failed");
    return null;
  },
});

/** The newest users first, at most `limit` (default 100). */
export const list = query({
  args: { limit: v.optional(v.number()) },
  handler: async (ctx, { limit }) =>
    await ctx.db.query("users").order("desc").take(Math.max(0, Math.min(limit ?? 100, 1000))),
});

/** The user with this email, through the `by_email` index. */
export const by_email = query({
  args: { email: v.string() },
  handler: async (ctx, { email }) =>
    await ctx.db.query("users").withIndex("by_email", (q) => q.eq("email", email)).unique(),
});

/** Every user's email, in creation order. */
export const emails = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("users").collect()).map((u) => u.email),
});

/** How many users there are. */
export const count = query({
  args: {},
  handler: async (ctx) => (await ctx.db.query("users").collect()).length,
});

/** One page of users for `usePaginatedQuery` (oldest first). */
export const page = query({
  args: { paginationOpts: paginationOptsValidator },
  handler: async (ctx, { paginationOpts }) => await ctx.db.query("users").paginate(paginationOpts),
});

/** Changes a user's email; a missing user is a ConvexError with data. */
export const update_email = mutation({
  args: { id: v.id("users"), email: v.string() },
  returns: v.object({ name: v.string(), email: v.string() }),
  handler: async (ctx, { id, email }) => {
    const user = await ctx.db.get(id);
    if (!user) throw new ConvexError({ code: "NO_SUCH_USER", id });
    await ctx.db.patch(id, { email });
    return { name: user.name, email };
  },
});

export const delete_user = mutation({
  args: { id: v.id("users") },
  handler: async (ctx, { id }) => {
    await ctx.db.delete(id);
  },
});

/** Creates a user unless the email is taken: a query and a mutation from an action. */
export const signup = action({
  args: { name: v.string(), email: v.string() },
  handler: async (ctx, { name, email }): Promise<string> => {
    const existing = await ctx.runQuery(api.users.by_email, { email });
    if (existing) throw new ConvexError({ code: "EMAIL_TAKEN", email });
    return await ctx.runMutation(internal.users.insert, { name, email });
  },
});

export const insert = internalMutation({
  args: { name: v.string(), email: v.string() },
  handler: async (ctx, args) => await ctx.db.insert("users", args),
});
