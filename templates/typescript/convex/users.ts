import { ConvexError, v } from "convex/values";
import { action, mutation, query } from "./_generated/server";

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
    const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: data });
    if (response.status !== 200) throw new Error("Webhook failed");
    return null;
  },
});

/** The newest users first (what the page shows, live). */
export const list = query({
  args: {},
  handler: async (ctx) => await ctx.db.query("users").order("desc").take(100),
});

/** Adds a user; the page calls it as `api.users.create`. */
export const create = mutation({
  args: { name: v.string(), email: v.string() },
  handler: async (ctx, { name, email }) => {
    if (!name.trim()) throw new ConvexError({ field: "name", message: "a name is required" });
    return await ctx.db.insert("users", { name, email });
  },
});

/** Who is signed in: the caller's identity from the token the page sent,
 * or null for an anonymous caller. */
export const me = query({
  args: {},
  handler: async (ctx) => {
    const user = await ctx.auth.getUserIdentity();
    if (!user) return null;
    return { name: user.name ?? null, email: user.email ?? null, tokenIdentifier: user.tokenIdentifier };
  },
});
