//! `GET /ws`: WebSocket echo.
//!
//! Text and binary messages come back unchanged; pings are answered (by
//! tungstenite itself). A Close from the peer is answered with a Close and
//! ends the session. When the app starts draining it sends Close 1001
//! ("going away") and waits for the peer's reply.

use std::sync::Arc;

use axum::{
    extract::{
        State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code},
    },
    response::Response,
};

use crate::{drain::Drain, state::AppState};

pub async fn upgrade(State(state): State<Arc<AppState>>, ws: WebSocketUpgrade) -> Response {
    let drain = state.drain.clone();
    ws.on_upgrade(move |socket| echo(socket, drain))
}

async fn echo(mut socket: WebSocket, drain: Drain) {
    let _open = drain.track_websocket();
    let draining = drain.started();
    tokio::pin!(draining);
    // Set once either side has sent Close: nothing more may be sent.
    let mut closing = false;

    loop {
        let message = tokio::select! {
            message = socket.recv() => message,
            () = &mut draining, if !closing => {
                closing = true;
                let bye = CloseFrame { code: close_code::AWAY, reason: "server shutting down".into() };
                if socket.send(Message::Close(Some(bye))).await.is_err() {
                    break;
                }
                continue;
            }
        };
        let reply = match message {
            // The stream ends once the close handshake is done (or the peer left).
            None => break,
            Some(Err(err)) => {
                tracing::debug!("websocket error: {err}");
                break;
            }
            Some(Ok(Message::Text(text))) => Message::Text(text),
            Some(Ok(Message::Binary(data))) => Message::Binary(data),
            // tungstenite queues the Pong and flushes it on the next recv.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            // tungstenite queued our Close reply; the next recv sends it and
            // then reports the end of the stream.
            Some(Ok(Message::Close(_))) => {
                closing = true;
                continue;
            }
        };
        if !closing && socket.send(reply).await.is_err() {
            break;
        }
    }
}
