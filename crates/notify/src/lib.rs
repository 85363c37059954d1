//! Deploy notifications, the part that needs no network: the events and
//! their JSON body, the signature a webhook's body carries, and when a
//! failed delivery is tried again. The daemon delivers them.
#![deny(missing_docs)]

mod backoff;
mod event;
mod signature;

pub use backoff::Backoff;
pub use event::{Breach, BudgetNumbers, Event, EventKind, UnknownEvent};
pub use signature::{SIGNATURE_PREFIX, sign, verify};
