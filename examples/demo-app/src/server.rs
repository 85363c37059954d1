//! Startup and shutdown: boot delay, bind, announce, serve, drain.

use std::{error::Error, io::Write, net::SocketAddr, sync::Arc, time::Duration};

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::{
    config::Config, database::Database, drain::Drain, routes, signals::Signals, state::AppState,
};

/// Runs the app until a signal has drained it.
pub async fn run() -> Result<(), Box<dyn Error>> {
    let config = Config::from_env()?;
    let mut signals = Signals::install()?;

    if !config.boot_delay.is_zero() {
        info!(delay = ?config.boot_delay, "simulating a slow boot");
        tokio::select! {
            () = tokio::time::sleep(config.boot_delay) => {}
            signal = signals.recv() => {
                info!("{signal} during boot: exiting before binding");
                return Ok(());
            }
        }
    }

    let database = match &config.database_url {
        Some(url) => Some(Database::connect(url, &config.write_column).await?),
        None => None,
    };
    let listener = TcpListener::bind((config.bind.as_str(), config.port))
        .await
        .map_err(|err| format!("cannot bind {}:{}: {err}", config.bind, config.port))?;
    let addr = listener.local_addr()?;
    announce(addr)?;
    info!(%addr, version = %config.version, "demo app up");

    let drain = Drain::new();
    let app = routes::router(Arc::new(AppState::new(&config, drain.clone(), database)));
    serve(listener, app, signals, drain, config.shutdown_grace).await?;
    if let Some(path) = &config.exit_marker {
        note_exit(path, &config.version)?;
    }
    Ok(())
}

/// Appends `VERSION PID UNIX_MS` to `path`: the last thing the process
/// does, so a test can tell when each version was gone.
fn note_exit(path: &str, version: &str) -> std::io::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{version} {} {now}", std::process::id())
}

/// Prints the one stdout line tests and the daemon parse.
fn announce(addr: SocketAddr) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()
}

/// Serves until SIGTERM/SIGINT, then stops accepting, lets in-flight
/// requests and open WebSockets finish (at most `grace`), and returns.
async fn serve(
    listener: TcpListener,
    app: axum::Router,
    mut signals: Signals,
    drain: Drain,
    grace: Duration,
) -> Result<(), Box<dyn Error>> {
    let listener = listener.tap_io(|tcp| {
        // Streamed responses (SSE, chunked) go out as soon as they are written.
        let _ = tcp.set_nodelay(true);
    });
    let stop_accepting = {
        let drain = drain.clone();
        async move { drain.started().await }
    };
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(stop_accepting)
        .into_future();
    tokio::pin!(server);

    let signal = tokio::select! {
        result = &mut server => return Ok(result?),
        signal = signals.recv() => signal,
    };
    info!("{signal}: draining (no new connections, finishing in-flight requests)");
    drain.start();

    let finished = async {
        server.await?;
        drain.websockets_closed().await;
        Ok::<_, std::io::Error>(())
    };
    tokio::select! {
        result = tokio::time::timeout(grace, finished) => match result {
            Ok(result) => {
                result?;
                info!("drained; exiting");
            }
            Err(_) => warn!(?grace, "grace period over; exiting with work still in flight"),
        },
        signal = signals.recv() => warn!("{signal} again: exiting without waiting"),
    }
    Ok(())
}
