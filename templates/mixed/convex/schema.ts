import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  users: defineTable({
    name: v.string(),
    email: v.string(),
  }).index("by_email", ["email"]),
  // Each signed-in user's own notes; owner is the user's tokenIdentifier.
  notes: defineTable({
    owner: v.string(),
    text: v.string(),
  }).index("by_owner", ["owner"]),
});
