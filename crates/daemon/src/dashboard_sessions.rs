//! The dashboard's login sessions: an opaque random id per browser that
//! logged in with the admin token, kept in memory with an expiry. The
//! cookie carries only the id, never the token, so a leaked cookie dies with
//! its session (or the daemon) and tells nothing about the token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "baton_session";

/// How long a session lasts after login.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// More sessions than this and the oldest are forgotten: a script logging in
/// in a loop cannot grow the daemon's memory without bound.
const MAX_SESSIONS: usize = 1024;

/// The sessions of one admin listener. Times are Unix milliseconds passed
/// in by the caller, so expiry is tested without waiting.
#[derive(Debug, Default)]
pub struct Sessions {
    /// Session id (hex) → when it expires.
    expiries: Mutex<HashMap<String, u64>>,
}

/// The random source of new session ids could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw a random session id from the operating system: {0}")]
pub struct NoRandomness(String);

impl Sessions {
    /// A new session, valid from `now_ms` for [`SESSION_LIFETIME`]; returns
    /// its id, 256 random bits from the operating system in hex.
    pub fn create(&self, now_ms: u64) -> Result<String, NoRandomness> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|error| NoRandomness(error.to_string()))?;
        let id: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        let lifetime = u64::try_from(SESSION_LIFETIME.as_millis()).unwrap_or(u64::MAX);
        let mut expiries = lock(&self.expiries);
        expiries.retain(|_, expiry| *expiry > now_ms);
        while expiries.len() >= MAX_SESSIONS {
            let oldest = expiries
                .iter()
                .min_by_key(|(_, expiry)| **expiry)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(oldest) => expiries.remove(&oldest),
                None => break,
            };
        }
        expiries.insert(id.clone(), now_ms.saturating_add(lifetime));
        Ok(id)
    }

    /// Whether `id` names a session that has not expired at `now_ms`. An
    /// expired one is forgotten on the way.
    pub fn is_valid(&self, id: &str, now_ms: u64) -> bool {
        let mut expiries = lock(&self.expiries);
        match expiries.get(id) {
            Some(expiry) if *expiry > now_ms => true,
            Some(_) => {
                expiries.remove(id);
                false
            }
            None => false,
        }
    }

    /// Ends the session `id` (logout); unknown ids are ignored.
    pub fn remove(&self, id: &str) {
        lock(&self.expiries).remove(id);
    }
}

/// The session id a `Cookie` header value carries, if any.
pub fn session_cookie(cookie_header: &str) -> Option<&str> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// The `Set-Cookie` value that hands the browser session `id`: not readable
/// by scripts, never sent along with a request another site starts.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that makes the browser forget its session.
pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIFETIME_MS: u64 = SESSION_LIFETIME.as_millis() as u64;

    #[test]
    fn a_session_is_valid_until_it_expires() {
        let sessions = Sessions::default();
        let id = sessions.create(1_000).expect("session");
        assert_eq!(id.len(), 64);
        assert!(sessions.is_valid(&id, 1_000));
        assert!(sessions.is_valid(&id, 1_000 + LIFETIME_MS - 1));
        assert!(!sessions.is_valid(&id, 1_000 + LIFETIME_MS));
        assert!(
            !sessions.is_valid(&id, 1_000),
            "an expired session came back"
        );
    }

    #[test]
    fn ids_are_random_and_unknown_ones_are_refused() {
        let sessions = Sessions::default();
        let first = sessions.create(0).expect("session");
        let second = sessions.create(0).expect("session");
        assert_ne!(first, second);
        assert!(!sessions.is_valid("", 0));
        assert!(!sessions.is_valid(&first.replace('a', "b").replace('0', "1"), 0));
    }

    #[test]
    fn logout_ends_the_session() {
        let sessions = Sessions::default();
        let id = sessions.create(0).expect("session");
        sessions.remove(&id);
        assert!(!sessions.is_valid(&id, 0));
    }

    #[test]
    fn the_oldest_sessions_give_way_beyond_the_limit() {
        let sessions = Sessions::default();
        let first = sessions.create(0).expect("session");
        for n in 1..=MAX_SESSIONS as u64 {
            sessions.create(n).expect("session");
        }
        assert!(!sessions.is_valid(&first, 10));
        assert_eq!(lock(&sessions.expiries).len(), MAX_SESSIONS);
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        assert_eq!(
            session_cookie("theme=dark; baton_session=abc123; x=y"),
            Some("abc123")
        );
        assert_eq!(session_cookie("baton_session=abc"), Some("abc"));
        assert_eq!(session_cookie("baton_session="), None);
        assert_eq!(session_cookie("other_baton_session=abc"), None);
        assert_eq!(session_cookie(""), None);
    }

    #[test]
    fn the_cookie_is_http_only_and_same_site_strict() {
        let cookie = set_cookie("abc");
        assert!(cookie.starts_with("baton_session=abc;"), "{cookie}");
        for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(part), "{cookie}");
        }
        assert!(clear_cookie().contains("Max-Age=0"));
    }
}
