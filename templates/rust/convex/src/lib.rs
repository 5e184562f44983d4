//! The backend functions of {{NAME}}.
//!
//! Every Rust module is a Convex module: the functions in `users.rs` are
//! `api.users.*` on the client (`api.users.list`, `api.users.create`, ...).
//! `cvx dev` rebuilds and redeploys on every save.

mod users;

convex_sdk::schema! {
    users {
        name: String,
        email: String,
    }
    index by_email(email);
}
