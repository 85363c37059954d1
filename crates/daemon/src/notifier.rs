//! Delivering deploy notifications to webhooks and commands, in the
//! background: a deploy only queues its events and never waits for them.
//!
//! Each (app, target) has its own bounded queue and one task working
//! through it in order, so a receiver that is down holds up only its own
//! events, and only for its tries: at most `retries + 1` attempts of
//! `timeout` each, plus the backoff between them, before the next event is
//! taken (with the defaults, six tries of 5 s and 31 s of waiting: about a
//! minute). A queue that is full drops its oldest event, with a warning.
//! Events still queued when the daemon stops are lost. A delivery is
//! logged when it succeeds, when it is retried and when it is given up.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use baton_notify::{Backoff, EventKind, sign};
use bytes::Bytes;
use http::{Method, Uri, header};
use http_body_util::Full;
use tokio::sync::Notify;

use crate::deploy_tally::DeployTally;
use crate::plain_http;

/// Events one target may have waiting; past it the oldest is dropped. A
/// receiver this far behind is down, and the newest events say the most.
pub const QUEUE_CAPACITY: usize = 64;

/// The most of a webhook's answer that is read: only its status counts.
const ANSWER_LIMIT: usize = 64 * 1024;

/// Where an event goes and how, ready to deliver: the key read, the
/// command's environment built.
#[derive(Clone, Debug)]
pub struct Target {
    /// `webhook http://…` or `command "…"`, for logs.
    pub label: String,
    /// The events it takes.
    pub events: Vec<EventKind>,
    /// How long one try may take.
    pub timeout: Duration,
    /// How many times a failed delivery is tried again.
    pub retries: u32,
    /// The webhook or the command.
    pub channel: Channel,
}

/// How an event reaches a target.
#[derive(Clone)]
pub enum Channel {
    /// POSTed, signed with `key`.
    Webhook {
        /// The address.
        uri: Uri,
        /// The HMAC key.
        key: Arc<[u8]>,
    },
    /// `sh -c COMMAND` in `dir`, with the event on stdin.
    Command {
        /// The command.
        command: String,
        /// Where it runs: the app's root.
        dir: PathBuf,
        /// Its environment (the app's, as build steps get it).
        env: Arc<[(String, String)]>,
    },
}

impl std::fmt::Debug for Channel {
    // The key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Channel::Webhook { uri, .. } => write!(f, "Webhook({uri})"),
            Channel::Command { command, dir, .. } => {
                write!(f, "Command({command:?} in {})", dir.display())
            }
        }
    }
}

/// One event on its way to one target.
#[derive(Debug)]
struct Delivery {
    app: String,
    target: Target,
    event: EventKind,
    /// The event's id: `X-Baton-Delivery`, the same on every try.
    id: String,
    body: Bytes,
}

/// The events waiting for one target.
#[derive(Default)]
struct Queue {
    waiting: Mutex<VecDeque<Delivery>>,
    wake: Notify,
}

impl Queue {
    /// Adds `delivery`, dropping the oldest waiting one if full (returned).
    fn push(&self, delivery: Delivery) -> Option<Delivery> {
        let mut waiting = lock(&self.waiting);
        let dropped = if waiting.len() >= QUEUE_CAPACITY {
            waiting.pop_front()
        } else {
            None
        };
        waiting.push_back(delivery);
        drop(waiting);
        // A permit is kept if the worker is busy, so nothing is missed.
        self.wake.notify_one();
        dropped
    }

    async fn next(&self) -> Delivery {
        loop {
            if let Some(delivery) = lock(&self.waiting).pop_front() {
                return delivery;
            }
            self.wake.notified().await;
        }
    }
}

/// The daemon's notification queues, one per (app, target), each worked
/// by its own task.
pub struct Notifier {
    queues: Mutex<HashMap<(String, String), Arc<Queue>>>,
    backoff: Backoff,
    /// Where outcomes are counted for `/metrics`.
    tally: Arc<DeployTally>,
}

impl Notifier {
    /// A notifier with no queues yet (they start with their first event),
    /// counting what becomes of each delivery in `tally`.
    pub fn new(tally: Arc<DeployTally>) -> Arc<Notifier> {
        Arc::new(Notifier {
            queues: Mutex::new(HashMap::new()),
            backoff: Backoff::default(),
            tally,
        })
    }

    /// Queues `body`, the JSON of event `event` with id `id`, for each of
    /// `targets` that takes it. Returns at once.
    pub fn send(&self, app: &str, targets: &[Target], event: EventKind, id: &str, body: Bytes) {
        for target in targets
            .iter()
            .filter(|target| target.events.contains(&event))
        {
            let queue = self.queue(app, &target.label);
            let delivery = Delivery {
                app: app.to_string(),
                target: target.clone(),
                event,
                id: id.to_string(),
                body: body.clone(),
            };
            if let Some(dropped) = queue.push(delivery) {
                self.tally.notification(app, &target.label, "dropped");
                tracing::warn!(
                    app,
                    target = %target.label,
                    event = %dropped.event,
                    id = %dropped.id,
                    "Notification dropped: {QUEUE_CAPACITY} events wait for this target already"
                );
            }
        }
    }

    fn queue(&self, app: &str, label: &str) -> Arc<Queue> {
        let mut queues = lock(&self.queues);
        let key = (app.to_string(), label.to_string());
        if let Some(queue) = queues.get(&key) {
            return Arc::clone(queue);
        }
        let queue = Arc::new(Queue::default());
        queues.insert(key, Arc::clone(&queue));
        tokio::spawn(work(
            Arc::clone(&queue),
            self.backoff,
            Arc::clone(&self.tally),
        ));
        queue
    }
}

/// Delivers a queue's events one after the other, each tried until it is
/// taken or its retries are spent.
async fn work(queue: Arc<Queue>, backoff: Backoff, tally: Arc<DeployTally>) {
    loop {
        let delivery = queue.next().await;
        let (app, target, event, id) = (
            delivery.app.as_str(),
            delivery.target.label.as_str(),
            delivery.event,
            delivery.id.as_str(),
        );
        let mut retry = 0;
        loop {
            match attempt(&delivery).await {
                Ok(()) => {
                    tally.notification(app, target, "delivered");
                    tracing::info!(app, target, %event, id, tries = retry + 1, "Notification delivered");
                    break;
                }
                Err(why) if retry < delivery.target.retries => {
                    retry += 1;
                    let wait = backoff.delay(retry, fastrand::f64());
                    tracing::info!(
                        app, target, %event, id, reason = %why,
                        retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "Notification failed; trying again"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(why) => {
                    tally.notification(app, target, "failed");
                    tracing::warn!(
                        app, target, %event, id, reason = %why, tries = retry + 1,
                        "Notification not delivered; giving it up"
                    );
                    break;
                }
            }
        }
    }
}

/// One try, within the target's timeout.
async fn attempt(delivery: &Delivery) -> Result<(), String> {
    let timeout = delivery.target.timeout;
    match &delivery.target.channel {
        Channel::Webhook { uri, key } => {
            let request = plain_http::request_to(Method::POST, uri)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::USER_AGENT, "baton-notify")
                .header("x-baton-event", delivery.event.name())
                .header("x-baton-delivery", &delivery.id)
                .header("x-baton-timestamp", unix_seconds().to_string())
                .header("x-baton-signature", sign(key, &delivery.body))
                .body(Full::new(delivery.body.clone()))
                .map_err(|error| format!("cannot build the request: {error}"))?;
            let answer =
                tokio::time::timeout(timeout, plain_http::exchange(uri, request, ANSWER_LIMIT))
                    .await
                    .map_err(|_| {
                        format!("no answer within {}", humantime::format_duration(timeout))
                    })??;
            match answer.0 {
                status if status.is_success() => Ok(()),
                status => Err(format!("the receiver answered {status}")),
            }
        }
        Channel::Command { command, dir, env } => {
            let mut env = env.to_vec();
            env.push(("BATON_EVENT".to_string(), delivery.event.name().to_string()));
            env.push(("BATON_DELIVERY".to_string(), delivery.id.clone()));
            let (app, label) = (delivery.app.as_str(), delivery.target.label.as_str());
            baton_release::run_command_with_input(
                command,
                dir,
                &env,
                delivery.body.to_vec(),
                timeout,
                |line: &str| {
                    tracing::info!(app, target = label, line, "Notification command output")
                },
            )
            .await
            .map_err(|error| error.to_string())
        }
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(n: usize) -> Delivery {
        Delivery {
            app: "web".to_string(),
            target: Target {
                label: "command \"true\"".to_string(),
                events: EventKind::ALL.to_vec(),
                timeout: Duration::from_secs(1),
                retries: 0,
                channel: Channel::Command {
                    command: "true".to_string(),
                    dir: PathBuf::from("/"),
                    env: Arc::from(Vec::new()),
                },
            },
            event: EventKind::DeployStarted,
            id: n.to_string(),
            body: Bytes::new(),
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest_event() {
        let queue = Queue::default();
        for n in 0..QUEUE_CAPACITY {
            assert!(queue.push(delivery(n)).is_none());
        }
        let dropped = queue.push(delivery(QUEUE_CAPACITY)).unwrap();
        assert_eq!(dropped.id, "0");
        assert_eq!(queue.next().await.id, "1");
        assert_eq!(lock(&queue.waiting).len(), QUEUE_CAPACITY - 1);
        assert_eq!(
            lock(&queue.waiting).back().unwrap().id,
            QUEUE_CAPACITY.to_string()
        );
    }
}
