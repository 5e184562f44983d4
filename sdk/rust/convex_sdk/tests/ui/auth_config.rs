mod unknown_key {
    convex_sdk::auth_config! {
        providers: [{ domain: "https://issuer.example", applicationID: "my-app" }]
    }
}

mod missing_domain {
    convex_sdk::auth_config! {
        providers: [{ application_id: "my-app" }]
    }
}

mod missing_jwks {
    convex_sdk::auth_config! {
        providers: [{ custom_jwt: { issuer: "https://issuer.example", algorithm: "RS256" } }]
    }
}

mod bad_algorithm {
    convex_sdk::auth_config! {
        providers: [{ custom_jwt: { issuer: "https://x", jwks: "https://x/jwks.json", algorithm: "HS256" } }]
    }
}

mod not_a_url {
    convex_sdk::auth_config! {
        providers: [{ domain: "issuer.example", application_id: "my-app" }]
    }
}

mod env_macro {
    convex_sdk::auth_config! {
        providers: [{ domain: env!("AUTH_ISSUER"), application_id: "my-app" }]
    }
}

fn main() {}
