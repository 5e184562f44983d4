// Benchmark functions for `bench/run` (bench/README.md), system "cvx-ts":
// the functions of the Rust bench app (bench/apps/bench/src/lib.rs) under
// the same names, with the same reads, writes and results, written as a
// Convex app writes them.
import { v } from "convex/values";
import { action, mutation, query } from "./_generated/server";
import { api } from "./_generated/api";

// ---- setup ------------------------------------------------------------------

/** Inserts users n = start .. start+count; returns their ids in n order. */
export const seed_users = mutation({
  args: { start: v.number(), count: v.number() },
  handler: async (ctx, { start, count }) => {
    const ids = [];
    for (let i = 0; i < count; i++) {
      const n = start + i;
      ids.push(await ctx.db.insert("users", { name: `user ${n}`, email: `user${n}@example.com`, n }));
    }
    return ids;
  },
});

/** Inserts accounts n = start .. start+count with `balance` each. */
export const seed_accounts = mutation({
  args: { start: v.number(), count: v.number(), balance: v.number() },
  handler: async (ctx, { start, count, balance }) => {
    for (let i = 0; i < count; i++) await ctx.db.insert("accounts", { n: start + i, balance });
    return count;
  },
});

/** Sum of the balances of accounts n in [start, start+count) (a check that
 * transfers conserve money). */
// Sum of n × (balance - base) over accounts n in [start, start+count): the
// harness compares it with the sum of (to - from) over every acknowledged
// transfer. Read-only; run after the timed window.
export const balance_wsum = query({
  args: { start: v.number(), count: v.number(), base: v.number() },
  handler: async (ctx, { start, count, base }) => {
    const docs = await ctx.db
      .query("accounts")
      .withIndex("by_n", (q) => q.gte("n", start).lt("n", start + count))
      .collect();
    let sum = 0;
    for (const d of docs) sum += d.n * (d.balance - base);
    return sum;
  },
});

export const balance_sum = query({
  args: { start: v.number(), count: v.number() },
  handler: async (ctx, { start, count }) => {
    const docs = await ctx.db
      .query("accounts")
      .withIndex("by_n", (q) => q.gte("n", start).lt("n", start + count))
      .collect();
    let sum = 0;
    for (const d of docs) sum += d.balance;
    return sum;
  },
});

// ---- (a) point query, (b) index range -----------------------------------------

/** (a) One document by id. */
export const get = query({
  args: { id: v.id("users") },
  handler: async (ctx, { id }) => await ctx.db.get(id),
});

/** (i) The read of the 90/10 mix: one account found through `by_n`, the
 * lookup a transfer makes, so the mix's writes change what it reads. */
export const account = query({
  args: { n: v.number() },
  handler: async (ctx, { n }) =>
    await ctx.db.query("accounts").withIndex("by_n", (q) => q.eq("n", n)).first(),
});

/** (b) 100 users from `by_n`, starting at n >= start. */
export const range100 = query({
  args: { start: v.number() },
  handler: async (ctx, { start }) =>
    await ctx.db
      .query("users")
      .withIndex("by_n", (q) => q.gte("n", start))
      .take(100),
});

// ---- (c) insert, (d) counter, (e) action -----------------------------------------

/** (c) One small document, one durable transaction. */
export const insert = mutation({
  args: { n: v.number() },
  handler: async (ctx, { n }) =>
    await ctx.db.insert("events", { kind: "bench", n, payload: "0123456789abcdef0123456789abcdef" }),
});

/** (d) Read-modify-write of one counter found through an index; every
 * client hits the same counter, so concurrent calls conflict and retry. */
export const incr = mutation({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    const doc = await ctx.db
      .query("counters")
      .withIndex("by_name", (q) => q.eq("name", name))
      .first();
    if (doc) {
      const count = doc.count + 1;
      await ctx.db.patch(doc._id, { count });
      return count;
    }
    await ctx.db.insert("counters", { name, count: 1 });
    return 1;
  },
});

/** The counter's value (the subscription of the fan-out workload (f)). */
export const counter = query({
  args: { name: v.string() },
  handler: async (ctx, { name }) => {
    const doc = await ctx.db
      .query("counters")
      .withIndex("by_name", (q) => q.eq("name", name))
      .first();
    return doc ? doc.count : 0;
  },
});

/** (e) An action that runs the insert mutation. */
export const act_insert = action({
  args: { n: v.number() },
  handler: async (ctx, { n }): Promise<string> => await ctx.runMutation(api.bench.insert, { n }),
});

// ---- (h) keynote-2 transfer ----------------------------------------------------------

/** Moves `amount` from account `from` to account `to` (found through
 * `by_n`), unless the source lacks funds: the keynote-2 transaction.
 * Returns whether it moved money. */
export const transfer = mutation({
  args: { from: v.number(), to: v.number(), amount: v.number() },
  handler: async (ctx, { from, to, amount }) => {
    if (from === to || amount <= 0) return false;
    const a = await ctx.db
      .query("accounts")
      .withIndex("by_n", (q) => q.eq("n", from))
      .first();
    const b = await ctx.db
      .query("accounts")
      .withIndex("by_n", (q) => q.eq("n", to))
      .first();
    if (!a || !b) return false;
    if (a.balance < amount) return false;
    await ctx.db.patch(a._id, { balance: a.balance - amount });
    await ctx.db.patch(b._id, { balance: b.balance + amount });
    return true;
  },
});

/** Pure computation: the total Collatz steps of 1..=n, a branchy loop (the
 * Rust app's metering benchmark). */
export const work = query({
  args: { n: v.number() },
  handler: async (_ctx, { n }) => {
    let total = 0;
    for (let start = 1; start <= n; start++) {
      let x = start;
      while (x !== 1) {
        x = x % 2 === 0 ? x / 2 : 3 * x + 1;
        total++;
      }
    }
    return total;
  },
});

/** No arguments, no reads, null: the cost of a call itself. */
export const empty = query({
  args: {},
  handler: async () => null,
});
