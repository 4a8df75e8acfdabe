//! `/openapi.json` and the `/docs` reference page. The page is Swagger UI with its assets
//! compiled into the binary, so it renders with no network access.

use actix_web::{HttpResponse, get as http_get};
use utoipa_swagger_ui::{Config, SwaggerUi};

/// The OpenAPI document (the same bytes as `openapi/openapi.json`).
#[http_get("/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(crate::openapi::document())
}

#[http_get("/docs")]
pub async fn docs_redirect() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", "/docs/"))
        .finish()
}

/// The Swagger UI service at `/docs/`, reading `/openapi.json`.
pub fn swagger() -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").config(Config::from("/openapi.json"))
}
