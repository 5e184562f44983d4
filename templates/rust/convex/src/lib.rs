//! The backend functions of {{NAME}}.
//!
//! Every Rust module is a Convex module: the functions in `users.rs` are
//! `api.users.*` on the client (`api.users.list`, `api.users.create`, ...),
//! those in `notes.rs` `api.notes.*`. `cvx dev` rebuilds and redeploys on
//! every save.

mod notes;
mod users;

convex_sdk::schema! {
    users {
        name: String,
        email: String,
    }
    index by_email(email);
    // Each signed-in user's own notes; owner is the user's token_identifier.
    notes {
        owner: String,
        text: String,
    }
    index by_owner(owner);
}

// Who may sign in: the OpenID Connect issuer whose tokens (for the audience
// "convex") the server accepts, from the deployment's environment variable
// AUTH_ISSUER. Until it is set every caller is anonymous; it takes effect as
// soon as it is: `cvx env set AUTH_ISSUER https://...` (see README.md).
convex_sdk::auth_config! {
    providers: [
        { domain: env("AUTH_ISSUER"), application_id: "convex" },
    ]
}
