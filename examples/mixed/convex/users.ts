import { paginationOptsValidator } from "convex/server";
import { query } from "./_generated/server";

// The TypeScript half of the `users` module: `api.users.list` and
// `api.users.byEmail`. The Rust half, `api.users.create`, is in
// src/users.rs.

/** The newest users first (what the page shows, live). */
export const list = query({
  args: {},
  handler: async (ctx) => await ctx.db.query("users").order("desc").take(100),
});

/** Every user by email, a page at a time (the page's "All users" list,
 * through `usePaginatedQuery`). */
export const byEmail = query({
  args: { paginationOpts: paginationOptsValidator },
  handler: async (ctx, { paginationOpts }) =>
    await ctx.db.query("users").withIndex("by_email").paginate(paginationOpts),
});
