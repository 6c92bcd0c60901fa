//! The orchestrator's pages as a browser uses them: the sign-in form, its
//! token and cookies, without a browser.

/// A client that shows redirects rather than following them.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The first part (`name=value`) of each `Set-Cookie` of `response`.
pub fn cookies_of(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| {
            value
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// The sign-in form as `GET /sign-in?next=…` serves it: the page, its
/// token, and the cookie the token is bound to.
pub struct SignInForm {
    pub page: String,
    pub token: String,
    pub cookie: String,
}

pub async fn sign_in_form(orchestrator: &str, next: &str) -> SignInForm {
    let response = no_redirects()
        .get(format!("{orchestrator}/sign-in"))
        .query(&[("next", next)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = cookies_of(&response)
        .into_iter()
        .find(|cookie| cookie.starts_with("projector_sign_in="))
        .expect("the form's cookie");
    let page = response.text().await.unwrap();
    let token = hidden_value(&page, "token");
    SignInForm {
        page,
        token,
        cookie,
    }
}

/// The value of the hidden input `name` of `page`.
pub fn hidden_value(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).expect("the hidden input") + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

/// Posts the sign-in form of `form` with `key`.
pub async fn post_sign_in(
    orchestrator: &str,
    form: &SignInForm,
    key: &str,
    next: &str,
) -> reqwest::Response {
    no_redirects()
        .post(format!("{orchestrator}/sign-in"))
        .header("cookie", &form.cookie)
        .form(&[("key", key), ("next", next), ("token", &form.token)])
        .send()
        .await
        .unwrap()
}

/// Signs in with `key` as a browser does; returns the session cookie.
pub async fn sign_in(orchestrator: &str, key: &str) -> String {
    let form = sign_in_form(orchestrator, "/").await;
    let signed_in = post_sign_in(orchestrator, &form, key, "/").await;
    assert_eq!(signed_in.status(), 303);
    cookies_of(&signed_in)
        .into_iter()
        .find(|cookie| cookie.starts_with("projector_session="))
        .expect("the session cookie")
}
