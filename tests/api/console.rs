//! The operator console over plain HTTP (no browser): login, sessions and logout, the CSRF
//! check, the confirmation step, an action and its audit row under the operator's name,
//! refusals as readable pages, the pause switch, and HTML escaping of user-controlled values.

use crate::helpers::*;
use reqwest::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

struct Console<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    html: String,
}

fn encode(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// The session's CSRF token, as the page's forms carry it.
fn csrf_of(html: &str) -> String {
    let start = html
        .find(r#"name="csrf" value=""#)
        .expect("a form with a csrf field")
        + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

impl<'a> Console<'a> {
    fn new(app: &'a TestApp) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            app,
            http,
            cookie: None,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(c) => request.header("cookie", c),
            None => request,
        };
        let r = request.send().await.unwrap();
        let status = r.status();
        let location = r
            .headers()
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        Page {
            status,
            location,
            html: r.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(self.app.url(path))).await
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.send(
            self.http
                .post(self.app.url(path))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(encode(fields)),
        )
        .await
    }

    /// Signs in with `token`; keeps the session cookie. Returns the raw `Set-Cookie`.
    async fn login(&mut self, token: &str) -> (StatusCode, Option<String>) {
        let r = self
            .http
            .post(self.app.url("/admin/login"))
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(encode(&[("token", token)]))
            .send()
            .await
            .unwrap();
        let set = r
            .headers()
            .get(SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned());
        if let Some(set) = &set {
            self.cookie = Some(set.split(';').next().unwrap().to_owned());
        }
        (r.status(), set)
    }
}

async fn status_of(app: &TestApp, id: &str) -> String {
    sqlx::query_scalar("SELECT status FROM withdrawals WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn audit_rows(app: &TestApp, id: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT actor, action FROM audit_log WHERE withdrawal_id = $1::uuid ORDER BY id")
        .bind(id)
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

fn threshold(s: &mut payoutd::config::Settings) {
    with_operator(s);
    s.approval.thresholds.insert("EUR".into(), dec("1000"));
}

#[tokio::test]
async fn an_operator_signs_in_confirms_an_approval_and_the_audit_names_them() {
    let app = spawn_app_with(threshold).await;
    app.fund("u1", "EUR", "2000").await;
    let w = app.withdraw_ok(&eur_to_btc("u1", "1000.00")).await;
    let id = w["id"].as_str().unwrap();
    let mut console = Console::new(&app);

    // Signed out: every page, and every post, goes to the login form and acts on nothing.
    let page = console.get("/admin").await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/admin/login"))
    );
    let page = console
        .post(
            &format!("/admin/withdrawals/{id}/approve"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/admin/login"));
    assert_eq!(status_of(&app, id).await, "awaiting_approval");
    assert!(console
        .get("/admin/login")
        .await
        .html
        .contains(r#"name="token""#));

    // Neither a website token nor a wrong one signs in.
    for token in [TOKEN, "not-a-token-at-all-0000"] {
        let (status, cookie) = console.login(token).await;
        assert_eq!((status, cookie), (StatusCode::UNAUTHORIZED, None));
    }
    let (status, set_cookie) = console.login(ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set_cookie = set_cookie.unwrap();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(
        !set_cookie.contains(ADMIN_TOKEN),
        "the cookie never carries the token"
    );

    let queue = console.get("/admin").await;
    assert_eq!(queue.status, StatusCode::OK);
    assert!(queue.html.contains(&format!("/admin/withdrawals/{id}")));
    assert!(
        queue
            .html
            .contains(r#"<td data-kind="awaiting_approval">1</td>"#),
        "{}",
        queue.html
    );

    let page = console.get(&format!("/admin/withdrawals/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.html.contains("amount at or above"),
        "the review reason is shown"
    );
    let csrf = csrf_of(&page.html);

    // The first post only asks for confirmation.
    let path = format!("/admin/withdrawals/{id}/approve");
    let confirm = console
        .post(&path, &[("csrf", &csrf), ("reason", "known customer")])
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.html.contains("Yes, approve"));
    assert_eq!(status_of(&app, id).await, "awaiting_approval");

    // A forged post (no or another CSRF token) is refused and changes nothing.
    for forged in [
        vec![("confirm", "yes")],
        vec![("csrf", "0000"), ("confirm", "yes")],
    ] {
        let page = console.post(&path, &forged).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN);
        assert!(page.html.contains("did not come from your console session"));
    }
    assert_eq!(status_of(&app, id).await, "awaiting_approval");

    let done = console
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("confirm", "yes"),
                ("reason", "known customer"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(
        done.location.unwrap(),
        format!("/admin/withdrawals/{id}?done=approve")
    );
    assert_eq!(status_of(&app, id).await, "processing");
    assert_eq!(
        app.sim.withdrawals().len(),
        1,
        "sent once, with its foreign_id"
    );
    assert_eq!(
        audit_rows(&app, id).await,
        vec![
            ("policy".into(), "hold_for_approval".into()),
            ("alice".into(), "approve".into())
        ]
    );

    // The same approval again lost the race to itself: a readable page, not problem+json.
    let again = console
        .post(&path, &[("csrf", &csrf), ("confirm", "yes")])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(
        again.html.contains("something else decided first"),
        "{}",
        again.html
    );
    assert!(again
        .html
        .contains("cannot approve a withdrawal that is processing"));

    // A resolution CoinsPaid's look-up does not back: refused with the reason on the page.
    let resolve = format!("/admin/withdrawals/{id}/resolve");
    let fields = [
        ("csrf", csrf.as_str()),
        ("confirm", "yes"),
        ("outcome", "not_paid"),
        ("reason", "user says nothing came"),
    ];
    let refused = console.post(&resolve, &fields).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(
        refused.html.contains("does not back this resolution"),
        "{}",
        refused.html
    );
    assert_eq!(app.balance("u1", "EUR").await.1, "1000.00");

    // The pause switch, confirmed and attributed.
    let pauses = console.get("/admin/pauses").await;
    assert!(pauses.html.contains("running for every currency"));
    let paused = console
        .post(
            "/admin/pauses",
            &[
                ("csrf", &csrf),
                ("confirm", "yes"),
                ("scope", "all"),
                ("reason", "CoinsPaid maintenance"),
            ],
        )
        .await;
    assert_eq!(paused.location.as_deref(), Some("/admin/pauses?done=pause"));
    let by: String =
        sqlx::query_scalar("SELECT paused_by FROM submission_pauses WHERE scope = '*'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(by, "alice");
    assert!(console
        .get("/admin/audit")
        .await
        .html
        .contains("CoinsPaid maintenance"));

    // Logout ends the session on the server: the old cookie no longer works.
    let out = console.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.location.as_deref(), Some("/admin/login"));
    assert_eq!(
        console.get("/admin").await.location.as_deref(),
        Some("/admin/login")
    );
    app.assert_invariants().await;
}

#[tokio::test]
async fn user_controlled_values_are_escaped_on_every_page() {
    let app = spawn_app_with(threshold).await;
    let user = "u<script>alert(1)</script>";
    let encoded: String = form_urlencoded::byte_serialize(user.as_bytes()).collect();
    app.fund(&encoded, "EUR", "1000").await;
    let mut body = eur_to_btc(user, "1000.00");
    body["end_user_reference"] = "<img/src=x/onerror=alert(2)>".into();
    let w = app.withdraw_ok(&body).await;
    assert_eq!(w["user_id"], user);
    let id = w["id"].as_str().unwrap();

    let mut console = Console::new(&app);
    console.login(ADMIN_TOKEN).await;
    let queue = console.get("/admin").await;
    let page = console.get(&format!("/admin/withdrawals/{id}")).await;
    let search = console.get(&format!("/admin/search?q={encoded}")).await;
    assert_eq!(found_in(&search.html), [id]);
    for html in [&queue.html, &page.html, &search.html] {
        assert!(
            !html.contains("<script>") && !html.contains("<img"),
            "{html}"
        );
        assert!(html.contains("u&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
    assert!(page.html.contains("&lt;img/src=x/onerror=alert(2)&gt;"));

    // A reason is user input too, shown back in the confirmation step and the audit rows.
    let csrf = csrf_of(&page.html);
    let reason = "<b>bold</b> & \"quoted\"";
    let path = format!("/admin/withdrawals/{id}/reject");
    let confirm = console
        .post(&path, &[("csrf", &csrf), ("reason", reason)])
        .await;
    assert!(!confirm.html.contains("<b>"));
    assert!(
        confirm
            .html
            .contains("&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;"),
        "{}",
        confirm.html
    );
    console
        .post(
            &path,
            &[("csrf", &csrf), ("confirm", "yes"), ("reason", reason)],
        )
        .await;
    assert_eq!(status_of(&app, id).await, "rejected");
    let after = console.get(&format!("/admin/withdrawals/{id}")).await;
    assert!(!after.html.contains("<b>") && after.html.contains("&lt;b&gt;bold"));
    app.assert_invariants().await;
}

/// The address of the stuck page's "Next page" link, if it has one.
fn next_page_of(html: &str) -> Option<String> {
    let start = html.find(r#"id="next-page" href=""#)? + 21;
    Some(html[start..].split('"').next()?.replace("&amp;", "&"))
}

#[tokio::test]
async fn an_operator_pages_to_an_anomaly_on_a_finished_withdrawal_and_acknowledges_it() {
    let app = spawn_app_with(threshold).await;
    app.fund("big", "EUR", "3000").await;
    for _ in 0..3 {
        app.withdraw_ok(&eur_to_btc("big", "1000.00")).await;
    }
    let id = id_of(&app.rejected_then_confirmed("u1").await);
    let mut console = Console::new(&app);
    console.login(ADMIN_TOKEN).await;

    // The counts are of the whole queue; the anomaly, newest, is on the second page of two.
    let first = console.get("/admin?limit=2").await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first
        .html
        .contains(r#"<td data-kind="awaiting_approval">3</td>"#));
    assert!(first.html.contains(r#"<td data-kind="anomaly">1</td>"#));
    assert!(!first.html.contains(&format!("/admin/withdrawals/{id}")));
    let second = console
        .get(&next_page_of(&first.html).expect("a next page"))
        .await;
    assert!(
        second.html.contains(&format!("/admin/withdrawals/{id}")),
        "{}",
        second.html
    );
    assert_eq!(next_page_of(&second.html), None);

    let page = console.get(&format!("/admin/withdrawals/{id}")).await;
    assert!(page.html.contains(r#"id="acknowledge""#), "{}", page.html);
    let csrf = csrf_of(&page.html);
    let path = format!("/admin/withdrawals/{id}/acknowledge");
    let refused = console
        .post(&path, &[("csrf", &csrf), ("confirm", "yes")])
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let forged = console
        .post(&path, &[("confirm", "yes"), ("reason", "handled")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let confirm = console
        .post(&path, &[("csrf", &csrf), ("reason", "refund agreed")])
        .await;
    assert!(
        confirm.html.contains("Yes, acknowledge"),
        "{}",
        confirm.html
    );
    assert!(
        audit_rows(&app, &id).await.is_empty(),
        "nothing before confirming"
    );
    let done = console
        .post(
            &path,
            &[
                ("csrf", &csrf),
                ("confirm", "yes"),
                ("reason", "refund agreed"),
            ],
        )
        .await;
    assert_eq!(
        done.location.as_deref(),
        Some(format!("/admin/withdrawals/{id}?done=acknowledge").as_str())
    );
    assert_eq!(
        audit_rows(&app, &id).await,
        vec![("alice".into(), "acknowledge".into())]
    );
    let page = console.get(&done.location.unwrap()).await;
    assert!(page.html.contains("Anomaly acknowledged"));
    assert!(page.html.contains("by alice"), "{}", page.html);
    assert!(!page.html.contains(r#"id="acknowledge""#));
    let queue = console.get("/admin").await;
    assert!(queue.html.contains(r#"<td data-kind="anomaly">0</td>"#));
    assert!(!queue.html.contains(&format!("/admin/withdrawals/{id}")));
}

#[tokio::test]
async fn a_console_session_ends_when_the_token_that_opened_it_changes_or_goes() {
    // Three replicas on one database, as after a rolling restart with new operator tokens:
    // alice's token as it was, alice's token replaced, alice removed.
    let replica = std::sync::atomic::AtomicUsize::new(0);
    let apps = spawn_cluster(3, |s| {
        let token = match replica.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => format!("alice:{ADMIN_TOKEN}"),
            1 => "alice:alice-replaced-token-0123".to_owned(),
            _ => "bob:bob-operator-token-01234".to_owned(),
        };
        s.admin.tokens = vec![payoutd::coinspaid::signing::SecretString::new(token)];
    })
    .await;
    let mut console = Console::new(&apps[0]);
    let (status, _) = console.login(ADMIN_TOKEN).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(console.get("/admin").await.status, StatusCode::OK);
    for app in &apps[1..] {
        let mut elsewhere = Console::new(app);
        elsewhere.cookie = console.cookie.clone();
        let page = elsewhere.get("/admin").await;
        assert_eq!(
            (page.status, page.location.as_deref()),
            (StatusCode::SEE_OTHER, Some("/admin/login")),
            "the session outlived its token"
        );
    }
    // Where the token is unchanged, the same session still works.
    assert_eq!(console.get("/admin").await.status, StatusCode::OK);
}

/// The withdrawals a search results page lists, in order.
fn found_in(html: &str) -> Vec<String> {
    let Some(start) = html.find(r#"<table id="search-results">"#) else {
        return Vec::new();
    };
    let table = &html[start..start + html[start..].find("</table>").unwrap()];
    table
        .split(r#"<a href="/admin/withdrawals/"#)
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_search_box_finds_by_id_foreign_id_or_user_as_the_api_does() {
    let app = spawn_app_with(with_operator).await;
    app.fund("u1", "EUR", "100.00").await;
    app.fund("u2", "EUR", "100.00").await;
    let w1 = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    let w2 = app.withdraw_ok(&eur_to_btc("u1", "10.00")).await;
    let w3 = app.withdraw_ok(&eur_to_btc("u2", "10.00")).await;
    let api = |query: String| {
        let app = &app;
        async move {
            let (status, page) = app.get_json(&format!("/v1/withdrawals?{query}")).await;
            assert_eq!(status, StatusCode::OK);
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(id_of)
                .collect::<Vec<_>>()
        }
    };

    let mut console = Console::new(&app);
    let signed_out = console.get("/admin/search?q=u1").await;
    assert_eq!(signed_out.location.as_deref(), Some("/admin/login"));
    console.login(ADMIN_TOKEN).await;
    // The box is on every page.
    let queue = console.get("/admin").await;
    assert!(queue.html.contains(r#"action="/admin/search""#));

    let search = |q: &str| {
        let path = format!("/admin/search?q={q}");
        let console = &console;
        async move { console.get(&path).await }
    };
    for w in [&w1, &w2, &w3] {
        let by_id = search(&id_of(w)).await;
        assert_eq!(by_id.status, StatusCode::OK);
        assert_eq!(found_in(&by_id.html), [id_of(w)]);
        let (status, _) = app.get_json(&format!("/v1/withdrawals/{}", id_of(w))).await;
        assert_eq!(status, StatusCode::OK, "the API gives it too");
        let by_foreign_id = search(&fid_of(w)).await;
        assert_eq!(found_in(&by_foreign_id.html), [id_of(w)]);
        assert_eq!(
            found_in(&by_foreign_id.html),
            api(format!("foreign_id={}", fid_of(w))).await
        );
    }
    for user in ["u1", "u2"] {
        let by_user = search(user).await;
        assert_eq!(
            found_in(&by_user.html),
            api(format!("user_id={user}")).await,
            "the user's, newest first, as the API lists them"
        );
    }
    assert_eq!(found_in(&search("u1").await.html), [id_of(&w2), id_of(&w1)]);
    // Surrounding spaces are dropped; nothing matching is said so.
    assert_eq!(found_in(&search("%20u2%20").await.html), [id_of(&w3)]);
    let nothing = search("nobody").await;
    assert_eq!(nothing.status, StatusCode::OK);
    assert!(found_in(&nothing.html).is_empty());
    assert!(nothing.html.contains("Nothing found for"));
    assert!(api("user_id=nobody".into()).await.is_empty());
    let empty = console.get("/admin/search").await;
    assert!(empty.html.contains("Type a withdrawal"), "{}", empty.html);
}
