//! A hook that adds headers to a request on its way upstream, after
//! routing: the daemon uses it to hand an app the feature flags evaluated
//! for the request. The proxy knows nothing of what a hook adds; it only
//! guarantees that the header reserved for flags never comes from the
//! client.

use std::fmt;
use std::net::IpAddr;

use http::{HeaderMap, HeaderName};

/// The header the daemon's flag evaluation hands an app
/// (`X-Baton-Flags: name=on,other=off,checkout=variant_b`). The proxy drops
/// one sent by a client on every request, injection or not, so an app can
/// trust it came from baton.
pub static FLAGS_HEADER: HeaderName = HeaderName::from_static("x-baton-flags");

/// Adds to the head of a request the proxy is about to send upstream.
///
/// Called once per request, on the proxy's worker thread, after the request
/// was routed and before its head goes upstream (and to a shadow copy): it
/// must not block or wait, and should take no lock a writer can hold.
pub trait RequestAnnotator: Send + Sync + fmt::Debug {
    /// Adds headers to `headers`, the request's head as it will go
    /// upstream (hop-by-hop headers already removed, `X-Forwarded-*`
    /// added); `client` is the client's address.
    fn annotate(&self, headers: &mut HeaderMap, client: IpAddr);
}
