//! baton-probe: the load generator behind `baton probe URL`.
//!
//! Users, end-to-end tests and benchmarks use it to send steady HTTP load at a
//! URL (usually the baton proxy) while something happens (a deploy, a
//! rollback, a daemon upgrade) and to count *every* failure, by kind:
//! connection refused, connection reset, timeout, 5xx, other non-2xx, other.
//!
//! How it works: [`run`] starts `concurrency` tokio tasks (workers) that send
//! requests one at a time until the duration ends or the request budget is
//! spent, optionally paced to a total rate. Connections are managed
//! explicitly with hyper's client connection API (no pool): with keep-alive
//! each worker keeps one HTTP/1.1 connection; without it each request opens
//! its own; with HTTP/2 all workers share one connection. The result is a
//! [`Report`], printable as a table or serialisable as JSON.
//!
//! What it must not do:
//! - hide a failure: a request is either counted ok (2xx, whole body read) or
//!   counted as exactly one kind of failure. HTTP/1.1 requests are never
//!   retried: a keep-alive connection closed under a request is the failure
//!   a client that does not retry sees. The only silent retry is HTTP/2's
//!   protocol-sanctioned one, for a stream the server refused unprocessed
//!   (`REFUSED_STREAM`, or beyond a graceful `GOAWAY`).
//! - wait without a bound: every await is limited by the request timeout or
//!   the run's deadline.
//! - know anything about baton itself: it speaks plain HTTP to any URL, and
//!   does no printing, argument parsing or process exit (that is the CLI's).

#![deny(missing_docs)]

mod config;
mod connection;
mod error;
mod outcome;
mod report;
mod run;
mod tls;
mod worker;

pub use config::{ProbeConfig, parse_header};
pub use error::ProbeError;
pub use outcome::{Outcome, classify_error, classify_status};
pub use report::{Failures, Latency, Report};
pub use run::{run, run_until};
