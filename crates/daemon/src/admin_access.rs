//! Who may pass the admin listener's door: a caller with the admin token
//! (`Authorization: Bearer`), or a browser with a dashboard session cookie.
//! A cookie is sent by the browser on its own, even with a request another
//! site's page started, so a cookie alone opens only what changes nothing;
//! a change also needs the header the dashboard's script sends
//! ([`CSRF_HEADER`]), which a cross-site form cannot set and a cross-site
//! script cannot send without a CORS preflight this listener never grants,
//! and any `Origin` or `Sec-Fetch-Site` the browser sends must be this
//! listener's own.

use axum::http::{HeaderMap, Method, header};

use crate::admin_token::AdminToken;

/// The header the dashboard's script sends with every change it asks for.
pub const CSRF_HEADER: &str = "x-baton-csrf";

/// What the door says to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Let it through.
    Granted,
    /// No credentials at all.
    NoCredentials,
    /// A token was presented and is wrong.
    WrongToken,
    /// A session cookie asked for a change without the dashboard's proof
    /// that its own page asked.
    CrossSite,
}

/// The routes anyone may reach: the page (which shows the login form
/// without a session), its assets, and logging in and out.
pub fn is_public(method: &Method, path: &str) -> bool {
    match *method {
        Method::GET | Method::HEAD => {
            matches!(path, "/" | "/assets/dashboard.css" | "/assets/dashboard.js")
        }
        Method::POST => matches!(path, "/login" | "/logout"),
        _ => false,
    }
}

/// Whether the browser says the request comes from a page of this very
/// listener (or was typed by the user): `Sec-Fetch-Site` and `Origin`, when
/// sent, must both agree. Non-browser callers send neither.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .map(|value: &header::HeaderValue| value.to_str().unwrap_or("\u{0}"))
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match text(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let Some(host) = text(header::HOST) else {
                return false;
            };
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
        }
    }
}

/// The door's decision for a request to `path` with `headers`, given the
/// admin token, the read-only flags token, and whether the request carries
/// a live dashboard session.
pub fn decide(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    admin: &AdminToken,
    flags: Option<&AdminToken>,
    session_valid: bool,
) -> Access {
    if is_public(method, path) {
        return Access::Granted;
    }
    let presented = headers.get(header::AUTHORIZATION);
    let authorizes =
        |token: &AdminToken| presented.is_some_and(|value| token.authorizes(value.as_bytes()));
    let evaluation = path.starts_with("/ofrep/");
    if authorizes(admin) || (evaluation && flags.is_some_and(authorizes)) {
        return Access::Granted;
    }
    if presented.is_some() {
        return Access::WrongToken;
    }
    if !session_valid {
        return Access::NoCredentials;
    }
    let safe = matches!(*method, Method::GET | Method::HEAD);
    if safe || (headers.contains_key(CSRF_HEADER) && same_origin(headers)) {
        Access::Granted
    } else {
        Access::CrossSite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> AdminToken {
        AdminToken::from_text(text, "test").expect("token")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                header::HeaderName::from_static(name),
                value.parse().expect("header value"),
            );
        }
        map
    }

    fn decide_with(
        method: Method,
        path: &str,
        pairs: &[(&'static str, &str)],
        session: bool,
    ) -> Access {
        decide(
            &method,
            path,
            &headers(pairs),
            &token("admin-token"),
            Some(&token("flags-token")),
            session,
        )
    }

    #[test]
    fn the_page_its_assets_and_login_are_open() {
        for (method, path) in [
            (Method::GET, "/"),
            (Method::GET, "/assets/dashboard.js"),
            (Method::GET, "/assets/dashboard.css"),
            (Method::POST, "/login"),
            (Method::POST, "/logout"),
        ] {
            assert_eq!(
                decide_with(method, path, &[], false),
                Access::Granted,
                "{path}"
            );
        }
        assert_eq!(
            decide_with(Method::GET, "/assets/other.js", &[], false),
            Access::NoCredentials
        );
        assert_eq!(
            decide_with(Method::POST, "/", &[], false),
            Access::NoCredentials
        );
    }

    #[test]
    fn the_bearer_token_opens_everything_with_or_without_a_cookie() {
        let bearer = [("authorization", "Bearer admin-token")];
        assert_eq!(
            decide_with(Method::GET, "/api/apps", &bearer, false),
            Access::Granted
        );
        assert_eq!(
            decide_with(Method::POST, "/api/apps/web/rollout/abort", &bearer, false),
            Access::Granted
        );
        let wrong = [("authorization", "Bearer nope")];
        assert_eq!(
            decide_with(Method::GET, "/api/apps", &wrong, true),
            Access::WrongToken,
            "a wrong token is refused even beside a session"
        );
    }

    #[test]
    fn a_session_reads_but_changes_only_with_the_csrf_header_from_its_own_origin() {
        assert_eq!(
            decide_with(Method::GET, "/api/dashboard", &[], true),
            Access::Granted
        );
        assert_eq!(
            decide_with(Method::GET, "/api/dashboard", &[], false),
            Access::NoCredentials
        );
        let abort = "/api/apps/web/rollout/abort";
        assert_eq!(
            decide_with(Method::POST, abort, &[], true),
            Access::CrossSite
        );
        let own = [
            ("x-baton-csrf", "1"),
            ("origin", "http://127.0.0.1:9000"),
            ("host", "127.0.0.1:9000"),
            ("sec-fetch-site", "same-origin"),
        ];
        assert_eq!(
            decide_with(Method::POST, abort, &own, true),
            Access::Granted
        );
        assert_eq!(
            decide_with(Method::POST, abort, &own, false),
            Access::NoCredentials
        );
        let other_origin = [
            ("x-baton-csrf", "1"),
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:9000"),
        ];
        assert_eq!(
            decide_with(Method::POST, abort, &other_origin, true),
            Access::CrossSite
        );
        let cross_site = [("x-baton-csrf", "1"), ("sec-fetch-site", "cross-site")];
        assert_eq!(
            decide_with(Method::POST, abort, &cross_site, true),
            Access::CrossSite
        );
        let null_origin = [("x-baton-csrf", "1"), ("origin", "null"), ("host", "h")];
        assert_eq!(
            decide_with(Method::POST, abort, &null_origin, true),
            Access::CrossSite
        );
    }

    #[test]
    fn the_flags_token_still_opens_evaluation_only() {
        let flags = [("authorization", "Bearer flags-token")];
        assert_eq!(
            decide_with(Method::POST, "/ofrep/v1/evaluate/flags", &flags, false),
            Access::Granted
        );
        assert_eq!(
            decide_with(Method::GET, "/api/apps", &flags, false),
            Access::WrongToken
        );
    }

    #[test]
    fn same_origin_trusts_callers_that_are_not_browsers() {
        assert!(same_origin(&headers(&[])));
        assert!(same_origin(&headers(&[("sec-fetch-site", "none")])));
        assert!(same_origin(&headers(&[
            ("origin", "http://LOCALHOST:80"),
            ("host", "localhost:80")
        ])));
        assert!(!same_origin(&headers(&[("origin", "http://a:1")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
    }
}
