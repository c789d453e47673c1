//! `GET /docs`: Swagger UI over `/openapi.json`, every file it loads compiled into the binary
//! (extracted by build.rs from the vendored release), so the page works where payment
//! infrastructure usually runs: without internet. The page, its script and its settings name
//! no other host, and the Content-Security-Policy makes the browser hold to that.

use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::AppState;

const INDEX: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>payoutd API</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"#;

/// `validatorUrl: null`: Swagger UI's default asks validator.swagger.io for a badge.
const INIT: &str = r##"window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
"##;

const BUNDLE: &str = include_str!(concat!(env!("OUT_DIR"), "/swagger-ui/swagger-ui-bundle.js"));
const CSS: &str = include_str!(concat!(env!("OUT_DIR"), "/swagger-ui/swagger-ui.css"));

/// Same origin only; Swagger UI sets inline styles and shows data: images.
const POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

fn serve(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_SECURITY_POLICY, POLICY),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// `/docs` and the three files it loads.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/docs",
            get(|| async { serve("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/docs/init.js",
            get(|| async { serve("text/javascript; charset=utf-8", INIT) }),
        )
        .route(
            "/docs/swagger-ui-bundle.js",
            get(|| async { serve("text/javascript; charset=utf-8", BUNDLE) }),
        )
        .route(
            "/docs/swagger-ui.css",
            get(|| async { serve("text/css; charset=utf-8", CSS) }),
        )
}
