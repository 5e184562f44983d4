//! The Rust half of {{NAME}}'s backend functions.
//!
//! Every Rust module is a Convex module: the functions in `users.rs` are
//! `api.users.*` on the client, beside those of `convex/users.ts`. The
//! schema is `convex/schema.ts`, the sign-in providers are in
//! `convex/auth.config.ts` (one place per app). `cvx dev` rebuilds and
//! redeploys on every save.

mod users;
