import { query } from "./_generated/server";

// The TypeScript half of the `users` module: `api.users.list`. The Rust half,
// `api.users.create` and `api.users.me`, is in src/users.rs.

/** The newest users first (what the page shows, live). */
export const list = query({
  args: {},
  handler: async (ctx) => await ctx.db.query("users").order("desc").take(100),
});
