//! GraphiQL, the in-browser IDE at `GET /graphql`, served from the binary: its page, Homeward's
//! start script and the pinned GraphiQL and React builds (`assets/graphiql/`, gzipped), so that
//! it works on a machine without internet. The page's Content-Security-Policy lets it load
//! nothing from elsewhere.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Where the assets are served; the version is in the path, so they can be cached for good.
pub const ASSETS: &str = "/graphiql/3.8.3";

const PAGE: &str = include_str!("../assets/graphiql/index.html");
const START: &str = include_str!("../assets/graphiql/start.js");

/// (name, content type, gzipped bytes)
const GZIPPED: [(&str, &str, &[u8]); 4] = [
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.js.gz"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql.min.css.gz"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react.production.min.js.gz"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react-dom.production.min.js.gz"),
    ),
];

/// Scripts and styles from this server only; requests to it only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The GraphiQL page.
pub fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        PAGE,
    )
        .into_response()
}

/// What `GET /graphql` answers a browser when GraphiQL is off.
pub fn off() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "GraphiQL is off on this server (HOMEWARD_GRAPHIQL=true turns it on). \
         The GraphQL API answers POST /graphql.\n",
    )
        .into_response()
}

/// `GET /graphiql/3.8.3/{file}`.
pub async fn asset(Path(file): Path<String>) -> Response {
    const FOREVER: &str = "public, max-age=31536000, immutable";
    if file == "start.js" {
        return (
            [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            START,
        )
            .into_response();
    }
    match GZIPPED.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => {
            let mut response = (
                [
                    (header::CONTENT_TYPE, *content_type),
                    (header::CACHE_CONTROL, FOREVER),
                ],
                *bytes,
            )
                .into_response();
            // Every browser accepts gzip; the files are kept only in that form.
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            response
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
