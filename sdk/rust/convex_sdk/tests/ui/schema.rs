convex_sdk::schema! {
    index early(name);
    users { name: String }
}

mod b {
    convex_sdk::schema! {
        users { name: String, age: Age }
    }
}

mod c {
    convex_sdk::schema! {
        users { name: String }
        index by_email(email);
    }
}

mod d {
    convex_sdk::schema! {
        users;
        users;
    }
}

mod e {
    convex_sdk::schema! {
        users { _secret: String }
    }
}

fn main() {}
