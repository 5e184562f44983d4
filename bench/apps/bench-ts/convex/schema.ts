// The tables and indexes of the Rust bench app (bench/apps/bench/src/lib.rs).
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  users: defineTable({
    name: v.string(),
    email: v.string(),
    n: v.number(),
  }).index("by_n", ["n"]),

  events: defineTable({
    kind: v.string(),
    n: v.number(),
    payload: v.string(),
  }),

  counters: defineTable({
    name: v.string(),
    count: v.number(),
  }).index("by_name", ["name"]),

  accounts: defineTable({
    n: v.number(),
    balance: v.number(),
  }).index("by_n", ["n"]),
});
