use convex_sdk::*;

#[http_action]
fn no_options(_req: HttpRequest) -> HttpResponse {
    HttpResponse::new(200)
}

#[http_action(method = "POST")]
fn no_route(_req: HttpRequest) -> HttpResponse {
    HttpResponse::new(200)
}

#[http_action(method = "post", route = "/a")]
fn lowercase_method(_req: HttpRequest) -> HttpResponse {
    HttpResponse::new(200)
}

#[http_action(method = "POST", route = "webhook")]
fn relative_route(_req: HttpRequest) -> HttpResponse {
    HttpResponse::new(200)
}

#[http_action(method = "GET", route = "/a", internal)]
fn unknown_option(_req: HttpRequest) -> HttpResponse {
    HttpResponse::new(200)
}

#[http_action(method = "POST", route = "/b")]
async fn client_argument(_req: HttpRequest, name: String) -> HttpResponse {
    HttpResponse::from_text(name)
}

#[http_action(method = "POST", route = "/c")]
async fn database(_db: Database, _req: HttpRequest) -> HttpResponse {
    HttpResponse::new(200)
}

#[http_action(method = "POST", route = "/d")]
async fn borrowed_request(_req: &HttpRequest) -> HttpResponse {
    HttpResponse::new(200)
}

#[http_action(method = "POST", route = "/e")]
async fn no_response(_req: HttpRequest) {}

#[http_action(method = "POST", route = "/f")]
async fn wrong_response(req: HttpRequest) -> Result<String, ConvexError> {
    Ok(req.text())
}

// Fine: no request, no context, a plain response.
#[http_action(method = "GET", route = "/health")]
fn health() -> HttpResponse {
    HttpResponse::from_text("ok")
}

fn main() {}
