//! The pages' sessions and the keys behind them, against the real binary:
//! where a sign-in may lead, who may post its form, what signing out ends,
//! and how fast keys can be guessed.

use crate::support;

use support::pages::{cookies_of, no_redirects, post_sign_in, sign_in, sign_in_form};
use support::{KEY, OTHER_KEY, client, scratch_dir, up};

#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_leads_only_to_a_path_of_this_site() {
    let data_dir = scratch_dir();
    let cluster = up(data_dir.path(), &[]);
    let orchestrator = cluster.url("orchestrator");
    for elsewhere in ["/\t/evil.example", "//evil.example", "/\\evil.example"] {
        let form = sign_in_form(&orchestrator, elsewhere).await;
        assert!(!form.page.contains("evil.example"), "{elsewhere:?}");
    }
    for elsewhere in [
        "/\t/evil.example",
        "/\n/x",
        "/\r/x",
        "/x\u{e9}",
        "//evil.example",
    ] {
        let form = sign_in_form(&orchestrator, "/").await;
        let signed_in = post_sign_in(&orchestrator, &form, KEY, elsewhere).await;
        assert_eq!(signed_in.status(), 303, "{elsewhere:?}");
        assert_eq!(signed_in.headers()["location"], "/", "{elsewhere:?}");
    }
    let form = sign_in_form(&orchestrator, "/reports/new").await;
    let signed_in = post_sign_in(&orchestrator, &form, KEY, "/reports/new").await;
    assert_eq!(signed_in.headers()["location"], "/reports/new");
}

#[tokio::test(flavor = "multi_thread")]
async fn another_site_cannot_sign_a_browser_in_or_post_its_forms() {
    let data_dir = scratch_dir();
    let cluster = up(data_dir.path(), &[]);
    let orchestrator = cluster.url("orchestrator");

    // A form posted from another site, as a browser marks it.
    let form = sign_in_form(&orchestrator, "/").await;
    let cross_site = no_redirects()
        .post(format!("{orchestrator}/sign-in"))
        .header("cookie", &form.cookie)
        .header("origin", "http://evil.example")
        .header("sec-fetch-site", "cross-site")
        .form(&[("key", OTHER_KEY), ("next", "/"), ("token", &form.token)])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    assert!(
        cookies_of(&cross_site)
            .iter()
            .all(|cookie| !cookie.starts_with("projector_session="))
    );

    // Without the form's cookie (SameSite keeps it from another site's post),
    // or with another token, the sign-in is refused.
    let without_cookie = no_redirects()
        .post(format!("{orchestrator}/sign-in"))
        .form(&[("key", OTHER_KEY), ("next", "/"), ("token", &form.token)])
        .send()
        .await
        .unwrap();
    assert_eq!(without_cookie.status(), 403);
    let other_form = sign_in_form(&orchestrator, "/").await;
    let mismatched = no_redirects()
        .post(format!("{orchestrator}/sign-in"))
        .header("cookie", &other_form.cookie)
        .form(&[("key", OTHER_KEY), ("next", "/"), ("token", &form.token)])
        .send()
        .await
        .unwrap();
    assert_eq!(mismatched.status(), 403);

    // A signed-in browser's forms are refused from another site too.
    let session = sign_in(&orchestrator, KEY).await;
    let created = no_redirects()
        .post(format!("{orchestrator}/reports/new"))
        .header("cookie", &session)
        .header("origin", "http://evil.example")
        .form(&[
            ("customer_id", "C-000001"),
            ("time_horizon_years", "5"),
            ("risk_profile", "balanced"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 403);
    let listed = support::get_as(&format!("{orchestrator}/reports"), KEY).await;
    assert_eq!(listed["reports"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn signing_out_ends_the_session_for_every_copy_of_its_cookie() {
    let data_dir = scratch_dir();
    let cluster = up(data_dir.path(), &[]);
    let orchestrator = cluster.url("orchestrator");
    let session = sign_in(&orchestrator, KEY).await;
    let page = |cookie: String| {
        let url = format!("{orchestrator}/");
        async move {
            no_redirects()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(page(session.clone()).await, 200);
    let signed_out = no_redirects()
        .post(format!("{orchestrator}/sign-out"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), 303);
    assert_eq!(page(session).await, 303, "a replayed cookie after sign-out");
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_a_tls_proxy_the_cookie_is_secure_and_the_public_origin_posts() {
    let data_dir = scratch_dir();
    let cluster = up(
        data_dir.path(),
        &["--public-url", "https://reports.example"],
    );
    let orchestrator = cluster.url("orchestrator");
    let form = sign_in_form(&orchestrator, "/").await;
    let signed_in = no_redirects()
        .post(format!("{orchestrator}/sign-in"))
        .header("cookie", &form.cookie)
        .header("origin", "https://reports.example")
        .form(&[("key", KEY), ("next", "/"), ("token", &form.token)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let set_cookie: Vec<&str> = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap())
        .filter(|value| value.starts_with("projector_session="))
        .collect();
    assert_eq!(set_cookie.len(), 1);
    assert!(set_cookie[0].contains("Secure"), "{set_cookie:?}");
    assert!(set_cookie[0].contains("HttpOnly"), "{set_cookie:?}");
    drop(cluster);

    let plain = up(data_dir.path(), &[]);
    let form = sign_in_form(&plain.url("orchestrator"), "/").await;
    let signed_in = post_sign_in(&plain.url("orchestrator"), &form, KEY, "/").await;
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test(flavor = "multi_thread")]
async fn guessing_keys_is_slowed_to_a_few_a_minute_on_the_api_and_the_sign_in() {
    let data_dir = scratch_dir();
    let cluster = up(data_dir.path(), &[]);
    let gateway = cluster.url("gateway");
    let mut statuses = Vec::new();
    for guess in 0..30 {
        let answer = client()
            .get(format!("{gateway}/job_status/any"))
            .header("x-api-key", format!("guess-{guess}"))
            .send()
            .await
            .unwrap();
        statuses.push(answer.status().as_u16());
        if answer.status() == 429 {
            let retry_after = testkit::retry_after(&answer);
            assert!(retry_after >= 1);
        }
    }
    assert!(
        statuses[..20].iter().all(|status| *status == 401),
        "{statuses:?}"
    );
    assert!(
        statuses[20..].iter().all(|status| *status == 429),
        "{statuses:?}"
    );
    // Past the allowance, the right key from the same client teaches nothing.
    let right = client()
        .get(format!("{gateway}/job_status/any"))
        .header("x-api-key", KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 429);

    let orchestrator = cluster.url("orchestrator");
    let form = sign_in_form(&orchestrator, "/").await;
    let refused = post_sign_in(&orchestrator, &form, "guess-at-sign-in", "/").await;
    assert_eq!(refused.status(), 429, "the same client at the sign-in");
    assert!(refused.headers().contains_key("retry-after"));
}
