//! `/docs` works without internet: the page and every file it references are served by
//! payoutd itself, and nothing the browser is told to load or call names another host.

use crate::helpers::*;
use reqwest::StatusCode;

/// The values of `attr="..."` in an HTML page.
fn attributes<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!("{attr}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            &rest[..rest.find('"').expect("attribute closed")]
        })
        .collect()
}

/// The targets of `url(...)` in a stylesheet, quotes removed.
fn css_urls(css: &str) -> Vec<String> {
    css.match_indices("url(")
        .map(|(at, _)| {
            let rest = &css[at + 4..];
            let rest = rest.trim_start_matches(['"', '\'']);
            rest.chars()
                .take_while(|c| !matches!(c, '"' | '\'' | ')'))
                .collect()
        })
        .collect()
}

/// Whether a reference stays on the page's own origin (or inline data).
fn same_origin(reference: &str, origin: &str) -> bool {
    reference.starts_with("data:")
        || (reference.starts_with('/') && !reference.starts_with("//"))
        || reference.starts_with(&format!("{origin}/"))
        || !(reference.contains("://") || reference.starts_with("//"))
}

/// Every `http://`, `https://` or protocol-relative `//host` URL in a text that is not the
/// request's own origin.
fn foreign_urls(text: &str, origin: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("//") {
        let before = &text[..at];
        let scheme_given = before.ends_with("http:") || before.ends_with("https:");
        let host: String = text[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
            .collect();
        // `//` is also a comment or a regex; a host has a dot or a port.
        let protocol_relative = !scheme_given
            && matches!(before.chars().last(), Some('"' | '\'' | '(' | '='))
            && host.contains('.');
        if (scheme_given || protocol_relative)
            && !origin.ends_with(&format!("//{host}"))
            && !host.is_empty()
        {
            found.push(text[at.saturating_sub(6)..(at + 2 + host.len())].to_owned());
        }
    }
    found
}

#[test]
fn the_checks_themselves_catch_other_hosts() {
    let origin = "http://127.0.0.1:4000";
    assert!(foreign_urls(r#"<script src="https://cdn.jsdelivr.net/x.js">"#, origin).len() == 1);
    assert!(foreign_urls(r#"<link href="//unpkg.com/a.css">"#, origin).len() == 1);
    assert!(foreign_urls(
        r#"fetch("http://127.0.0.1:4000/openapi.json") // ok"#,
        origin
    )
    .is_empty());
    assert!(!same_origin("//unpkg.com/a.css", origin));
    assert!(!same_origin("https://unpkg.com/a.css", origin));
    assert!(same_origin("/docs/a.css", origin));
    assert_eq!(
        css_urls(r#"a{b:url("data:x")} c{d:url(/e.png)}"#),
        ["data:x", "/e.png"]
    );
}

#[tokio::test]
async fn docs_and_every_file_it_loads_are_served_here_and_name_no_other_host() {
    let app = spawn_app().await;
    let origin = app.address.trim_end_matches('/').to_owned();
    let fetch = |path: String| {
        let app = &app;
        async move {
            let r = app.http.get(app.url(&path)).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            let policy = r
                .headers()
                .get("content-security-policy")
                .unwrap_or_else(|| panic!("{path} has no Content-Security-Policy"))
                .to_str()
                .unwrap()
                .to_owned();
            assert!(policy.starts_with("default-src 'self'"), "{path}: {policy}");
            assert!(!policy.contains("http"), "{path}: {policy}");
            let text = r.text().await.unwrap();
            assert!(!text.is_empty(), "{path} is empty");
            text
        }
    };

    let page = fetch("/docs".into()).await;
    assert!(page.contains("id=\"swagger-ui\""), "{page}");
    assert_eq!(
        foreign_urls(&page, &origin),
        Vec::<String>::new(),
        "the page"
    );
    let referenced: Vec<&str> = attributes(&page, "src")
        .into_iter()
        .chain(attributes(&page, "href"))
        .collect();
    assert!(referenced.len() >= 3, "{referenced:?}");
    let mut scripts = Vec::new();
    for reference in referenced {
        assert!(
            same_origin(reference, &origin),
            "the page loads {reference}"
        );
        if reference.starts_with("data:") {
            continue;
        }
        let body = fetch(reference.to_owned()).await;
        if reference.ends_with(".css") {
            for url in css_urls(&body) {
                assert!(same_origin(&url, &origin), "{reference} loads {url}");
            }
            assert!(!body.contains("@import"), "{reference} imports");
        }
        if reference.ends_with(".js") {
            scripts.push((reference.to_owned(), body));
        }
    }
    // The page's own script: the document it reads and its settings name no other host
    // (Swagger UI's default validator badge would call validator.swagger.io).
    let (_, init) = scripts
        .iter()
        .find(|(path, _)| path.ends_with("init.js"))
        .expect("the page has its initializer");
    assert_eq!(foreign_urls(init, &origin), Vec::<String>::new(), "init.js");
    assert!(init.contains("url: \"/openapi.json\""), "{init}");
    assert!(init.contains("validatorUrl: null"), "{init}");
    // The viewer itself, compiled in: no source map left to fetch. (Its library code holds
    // URLs as data, e.g. the SVG namespace, that it never loads; the policy header above is
    // what holds the browser to this origin.)
    let (_, bundle) = scripts
        .iter()
        .find(|(path, _)| path.ends_with("swagger-ui-bundle.js"))
        .expect("the page loads Swagger UI");
    assert!(bundle.contains("SwaggerUIBundle"));
    assert!(!bundle.contains("sourceMappingURL"));
    // And the document the page reads is served here too.
    let r = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
