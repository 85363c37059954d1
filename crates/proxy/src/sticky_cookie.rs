//! The sticky cookie `baton_version`: reading it from a request's `Cookie`
//! headers and writing the `Set-Cookie` that places a client on a version.

use http::header::{self, HeaderMap, HeaderValue};

/// The cookie that pins a client to a version during a split.
pub const STICKY_COOKIE: &str = "baton_version";

/// The value of the first cookie named `name` in `headers`, without the
/// quotes RFC 6265 allows around a value. HTTP/2 clients send each cookie as
/// a `Cookie` field of its own, so every field is read, in order.
pub fn find_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .find_map(|value| find_in(value.as_bytes(), name.as_bytes()))
}

fn find_in<'a>(cookies: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    cookies.split(|&byte| byte == b';').find_map(|pair| {
        let equals = pair.iter().position(|&byte| byte == b'=')?;
        let (key, value) = (&pair[..equals], &pair[equals + 1..]);
        (trim(key) == name).then(|| unquote(trim(value)))
    })
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_space = |byte: &u8| *byte == b' ' || *byte == b'\t';
    let start = bytes.iter().position(|byte| !is_space(byte));
    let end = bytes.iter().rposition(|byte| !is_space(byte));
    match (start, end) {
        (Some(start), Some(end)) => &bytes[start..=end],
        _ => &[],
    }
}

fn unquote(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    }
}

/// `baton_version=<label>; Path=/; HttpOnly; SameSite=Lax`, or `None` when
/// `label` holds a character a cookie value cannot carry unquoted (space,
/// `"`, `,`, `;`, `\`, controls, non-ASCII): such a version cannot be pinned,
/// and a cookie that would be read back differently is worse than none.
pub fn set_cookie_for(label: &str) -> Option<HeaderValue> {
    let is_cookie_octet =
        |byte: u8| matches!(byte, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E);
    if label.is_empty() || !label.bytes().all(is_cookie_octet) {
        return None;
    }
    HeaderValue::from_str(&format!(
        "{STICKY_COOKIE}={label}; Path=/; HttpOnly; SameSite=Lax"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for cookie in cookies {
            headers.append(header::COOKIE, HeaderValue::from_bytes(cookie).unwrap());
        }
        headers
    }

    fn found(cookies: &[&[u8]]) -> Option<Vec<u8>> {
        find_cookie(&headers(cookies), STICKY_COOKIE).map(<[u8]>::to_vec)
    }

    #[test]
    fn plain_and_among_others() {
        assert_eq!(found(&[b"baton_version=v2"]), Some(b"v2".to_vec()));
        assert_eq!(
            found(&[b"session=abc; baton_version=v7; theme=dark"]),
            Some(b"v7".to_vec())
        );
        assert_eq!(found(&[b"session=abc"]), None);
        assert_eq!(found(&[]), None);
    }

    #[test]
    fn spaces_tabs_and_quotes() {
        assert_eq!(
            found(&[b"a=1 ;  baton_version = v3 ;b=2"]),
            Some(b"v3".to_vec())
        );
        assert_eq!(found(&[b"a=1;\tbaton_version=v3\t"]), Some(b"v3".to_vec()));
        assert_eq!(found(&[b"baton_version=\"v4\""]), Some(b"v4".to_vec()));
        // A lone quote is part of the value, not a quoted empty string.
        assert_eq!(found(&[b"baton_version=\""]), Some(b"\"".to_vec()));
        assert_eq!(found(&[b"baton_version="]), Some(b"".to_vec()));
        assert_eq!(found(&[b"baton_version=   "]), Some(b"".to_vec()));
    }

    #[test]
    fn names_must_match_whole_and_exactly() {
        assert_eq!(found(&[b"baton_version_old=v1"]), None);
        assert_eq!(found(&[b"xbaton_version=v1"]), None);
        assert_eq!(found(&[b"Baton_Version=v1"]), None);
        assert_eq!(
            found(&[b"baton_version_old=v1; baton_version=v2"]),
            Some(b"v2".to_vec())
        );
        // A value that looks like a pair is still the other cookie's value.
        assert_eq!(found(&[b"other=baton_version=v1"]), None);
        // An `=` in the value belongs to the value.
        assert_eq!(found(&[b"baton_version=a=b"]), Some(b"a=b".to_vec()));
    }

    #[test]
    fn several_cookie_headers_first_wins() {
        assert_eq!(
            found(&[b"a=1", b"baton_version=v5", b"baton_version=v6"]),
            Some(b"v5".to_vec())
        );
        assert_eq!(
            found(&[b"baton_version=v8; baton_version=v9"]),
            Some(b"v8".to_vec())
        );
    }

    #[test]
    fn malformed_pairs_are_skipped() {
        assert_eq!(
            found(&[b";;baton_version; =x; baton_version=v1"]),
            Some(b"v1".to_vec())
        );
        assert_eq!(found(&[b";"]), None);
        assert_eq!(found(&[b""]), None);
        // Bytes that are not UTF-8 elsewhere in the header do not hide it.
        assert_eq!(
            found(&[b"blob=\xff\xfe; baton_version=v1"]),
            Some(b"v1".to_vec())
        );
    }

    #[test]
    fn set_cookie_names_the_label() {
        assert_eq!(
            set_cookie_for("v42").unwrap(),
            "baton_version=v42; Path=/; HttpOnly; SameSite=Lax"
        );
        assert!(set_cookie_for("").is_none());
        for label in ["a b", "a;b", "a,b", "a\"b", "a\\b", "é", "a\tb"] {
            assert!(set_cookie_for(label).is_none(), "{label:?}");
        }
    }
}
