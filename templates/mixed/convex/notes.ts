import { ConvexError, v } from "convex/values";
import { mutation, query } from "./_generated/server";

// Per-user data: each note belongs to the user who added it, keyed by the
// user's tokenIdentifier (unique across providers). See README.md, "Signing in".

/** The caller's notes, newest first; none for an anonymous caller. */
export const mine = query({
  args: {},
  handler: async (ctx) => {
    const user = await ctx.auth.getUserIdentity();
    if (!user) return [];
    return await ctx.db
      .query("notes")
      .withIndex("by_owner", (q) => q.eq("owner", user.tokenIdentifier))
      .order("desc")
      .take(100);
  },
});

/** Adds a note of the caller's; the page calls it as `api.notes.add`. */
export const add = mutation({
  args: { text: v.string() },
  handler: async (ctx, { text }) => {
    const user = await ctx.auth.getUserIdentity();
    if (!user) throw new ConvexError("sign in to add notes");
    return await ctx.db.insert("notes", { owner: user.tokenIdentifier, text });
  },
});
