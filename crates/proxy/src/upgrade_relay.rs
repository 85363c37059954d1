//! Relaying a connection after `101 Switching Protocols`.
//!
//! WebSockets are relayed message by message so that, when their version
//! drains or the daemon stops, both ends can be sent a proper close frame
//! (1001 Going Away) instead of a reset. Other protocols are copied byte for
//! byte and shut down at the deadline.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_util::sync::CancellationToken;

use crate::admission::Admitted;
use crate::target::Target;
use crate::version::Version;

/// Time both ends get to answer our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What a relay holds until it ends.
pub struct Relay {
    /// Keeps the version's drain waiting for this connection.
    pub admitted: Admitted,
    /// The version relayed to.
    pub version: Arc<Version>,
    /// The target relayed to.
    pub target: Arc<Target>,
    /// Fires when the daemon itself stops.
    pub shutdown: CancellationToken,
    /// Whether the protocol is WebSocket.
    pub websocket: bool,
}

impl Relay {
    /// Relays between the client (once its upgrade completes) and `upstream`.
    pub fn spawn(self, client: OnUpgrade, upstream: Upgraded) {
        tokio::spawn(async move {
            let client = match client.await {
                Ok(client) => client,
                Err(error) => {
                    tracing::debug!(%error, "Client upgrade failed");
                    self.target.finish();
                    return;
                }
            };
            self.version.upgrade_started();
            let deadline = self.version.drain_deadline().clone();
            let going_away = async {
                tokio::select! {
                    _ = deadline.cancelled() => {}
                    _ = self.shutdown.cancelled() => {}
                }
            };
            if self.websocket {
                relay_websocket(client, upstream, going_away).await;
            } else {
                relay_bytes(client, upstream, going_away).await;
            }
            self.version.upgrade_ended();
            self.target.finish();
            drop(self.admitted);
        });
    }
}

async fn relay_bytes(client: Upgraded, upstream: Upgraded, going_away: impl Future<Output = ()>) {
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
        _ = going_away => {}
    }
}

async fn relay_websocket(
    client: Upgraded,
    upstream: Upgraded,
    going_away: impl Future<Output = ()>,
) {
    let client = WebSocketStream::from_raw_socket(TokioIo::new(client), Role::Server, None).await;
    let upstream =
        WebSocketStream::from_raw_socket(TokioIo::new(upstream), Role::Client, None).await;
    let (mut to_client, mut from_client) = client.split();
    let (mut to_upstream, mut from_upstream) = upstream.split();
    tokio::pin!(going_away);
    let mut closing_since: Option<tokio::time::Instant> = None;
    loop {
        let close_deadline = async {
            match closing_since {
                Some(since) => tokio::time::sleep_until(since + CLOSE_GRACE).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = from_client.next() => match message {
                Some(Ok(message)) => {
                    if to_upstream.send(message).await.is_err() && closing_since.is_none() {
                        break;
                    }
                }
                _ => break,
            },
            message = from_upstream.next() => match message {
                Some(Ok(message)) => {
                    if to_client.send(message).await.is_err() && closing_since.is_none() {
                        break;
                    }
                }
                _ => break,
            },
            _ = &mut going_away, if closing_since.is_none() => {
                closing_since = Some(tokio::time::Instant::now());
                let going = || Message::Close(Some(CloseFrame {
                    code: CloseCode::Away,
                    reason: "server going away".into(),
                }));
                let _ = to_client.send(going()).await;
                let _ = to_upstream.send(going()).await;
            }
            _ = close_deadline => break,
        }
    }
    let _ = to_client.close().await;
    let _ = to_upstream.close().await;
}
