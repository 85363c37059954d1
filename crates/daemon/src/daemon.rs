//! The daemon's life: start, serve, stop.

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::sync::Arc;
use std::time::Duration;

use baton_api::{DaemonInfo, ListenerInfo};
use baton_proxy::{Forwarder, Router, Server, Workers, server_config};
use baton_state::Store;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::admin_api::{self, AdminTokens};
use crate::app_host::AppHost;
use crate::app_manager::AppManager;
use crate::app_restore;
use crate::config::DaemonConfig;
use crate::control_api::{self, ControlState};
use crate::control_socket::OwnerOnlyListener;
use crate::error::DaemonError;
use crate::flag_service::{self, FlagService};
use crate::flags_api::{self, Caller};
use crate::listeners;
use crate::process_table::ProcessTable;
use crate::route_manager::RouteManager;
use baton_supervisor::{LogRotation, RestartPolicy};
use std::collections::HashMap;

/// Time upgraded connections get to answer their close frame at shutdown.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Runs the daemon until SIGTERM or SIGINT, then stops gracefully.
pub async fn run(config: DaemonConfig) -> Result<(), DaemonError> {
    let state_dir = &config.state_dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(|error| DaemonError::ControlSocket {
            path: state_dir.display().to_string(),
            reason: format!("cannot create the state directory: {error}"),
        })?;
    let store = Arc::new(Store::open(&state_dir.join("state.db"))?);
    let flags = Arc::new(FlagService::load(Arc::clone(&store), flag_service::hostname())?);
    let tls = if config.https.is_empty() && config.tls_cert.is_none() {
        None
    } else {
        match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(TlsAcceptor::from(server_config(cert, key)?)),
            _ => return Err(DaemonError::TlsMissing),
        }
    };
    let public = listeners::open(&config)?;
    if public.iter().any(|listener| listener.https) && tls.is_none() {
        return Err(DaemonError::TlsMissing);
    }
    let mut terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    // Bound now, with the other listeners, so a taken address stops the
    // start before the control socket exists or any app is restored.
    let admin = match &config.admin {
        Some(admin) => {
            let (listener, address) = bind_admin(admin.address).await?;
            let tokens = AdminTokens {
                admin: admin.token.clone(),
                flags: admin.flags_token.clone(),
            };
            Some((listener, address, tokens))
        }
        None => None,
    };
    let control = OwnerOnlyListener::bind(&config.socket_path()).await?;

    let router = Arc::new(Router::new());
    let shutdown = CancellationToken::new();
    let forwarder = Arc::new(Forwarder::new(
        Arc::clone(&router),
        config.limits.clone(),
        shutdown.clone(),
    ));
    let server = Server::new(forwarder, config.idle_grace);
    let workers = Workers::start(config.workers).map_err(DaemonError::Workers)?;
    let routes = Arc::new(
        RouteManager::new(Arc::clone(&router), Arc::clone(&store)).with_flags(Arc::clone(&flags)),
    );
    match routes.restore().await {
        Ok(0) => {}
        Ok(restored) => tracing::info!(
            restored,
            "Routes restored; targets get traffic once healthy"
        ),
        Err(error) => tracing::error!(%error, "Restoring routes failed"),
    }
    let host = Arc::new(AppHost {
        processes: ProcessTable::new(Arc::clone(&store), RestartPolicy::default()),
        store,
        routes: Arc::clone(&routes),
        logs_dir: state_dir.join("logs"),
        rotation: LogRotation::default(),
    });
    let live: HashMap<String, String> = routes
        .list()
        .into_iter()
        .filter_map(|route| {
            let label = route.versions.first()?.label.clone();
            Some((route.service, label))
        })
        .collect();
    let restored = app_restore::restore(&host, &live).await;
    tracing::info!(
        interrupted = restored.interrupted,
        adopted = restored.adopted,
        restarted = restored.restarted,
        stopped = restored.stopped,
        "App processes restored"
    );
    let apps = AppManager::new(host);

    let mut listener_info = Vec::new();
    for listener in public {
        listener_info.push(ListenerInfo {
            protocol: if listener.https { "https" } else { "http" }.to_string(),
            address: listener.address.to_string(),
            inherited: listener.inherited,
        });
        let acceptor = if listener.https { tls.clone() } else { None };
        let address = listener.address.to_string();
        let std_listener = listener
            .listener
            .into_std()
            .map_err(|reason| DaemonError::Bind {
                address: address.clone(),
                reason,
            })?;
        server
            .serve(std_listener, acceptor, &workers)
            .map_err(|reason| DaemonError::Bind { address, reason })?;
    }
    if let Some((_, address, _)) = &admin {
        listener_info.push(ListenerInfo {
            protocol: "admin".to_string(),
            address: address.to_string(),
            inherited: false,
        });
    }
    let info = DaemonInfo {
        pid: std::process::id(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        state_dir: state_dir.display().to_string(),
        socket: control.path().display().to_string(),
        listeners: listener_info.clone(),
        uptime_seconds: 0,
    };
    let socket_path = control.path().to_path_buf();
    let api = control_api::router(Arc::new(ControlState {
        routes,
        apps: Arc::clone(&apps),
        info,
        started: tokio::time::Instant::now(),
    }))
    .merge(flags_api::router(Arc::clone(&flags), Caller::Socket, "/v1"));
    let api_stop = CancellationToken::new();
    let api_task = {
        let api_stop = api_stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(control, api)
                .with_graceful_shutdown(async move { api_stop.cancelled().await })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "Control API stopped");
            }
        })
    };
    let admin_task = admin.map(|(listener, _, token)| {
        let api = admin_api::router(Arc::clone(&apps), token, Arc::clone(&flags))
            .into_make_service_with_connect_info::<SocketAddr>();
        let api_stop = api_stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, api)
                .with_graceful_shutdown(async move { api_stop.cancelled().await })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "Admin API stopped");
            }
        })
    });

    let addresses: Vec<String> = listener_info
        .iter()
        .map(|listener| format!("{}://{}", listener.protocol, listener.address))
        .collect();
    tracing::info!(listeners = ?addresses, socket = %socket_path.display(), "Serving");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);

    let signal_name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!(signal = signal_name, drain_timeout = ?config.drain_timeout, "Stopping");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);

    let deadline = tokio::time::Instant::now() + config.drain_timeout;
    let report = server.shutdown(config.drain_timeout).await;
    // Upgraded connections outlive their client connection task; give them
    // what is left of the drain, then a close frame.
    let _ = tokio::time::timeout_at(deadline, relays_ended(&router)).await;
    shutdown.cancel();
    let _ = tokio::time::timeout(CLOSE_GRACE, relays_ended(&router)).await;
    api_stop.cancel();
    // The apps outlive the daemon: the next one adopts them.
    apps.detach();
    let _ = tokio::time::timeout(Duration::from_secs(1), api_task).await;
    if let Some(admin_task) = admin_task {
        let _ = tokio::time::timeout(Duration::from_secs(1), admin_task).await;
    }
    let _ = std::fs::remove_file(&socket_path);
    tokio::task::spawn_blocking(move || workers.stop())
        .await
        .ok();
    tracing::info!(connections_cut = report.connections_cut, "Stopped");
    Ok(())
}

/// Binds the admin listener; returns it with the address actually bound
/// (port 0 resolved).
async fn bind_admin(address: SocketAddr) -> Result<(TcpListener, SocketAddr), DaemonError> {
    let bind_error = |reason| DaemonError::Bind {
        address: format!("{address} (--admin)"),
        reason,
    };
    let listener = TcpListener::bind(address).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

/// Resolves once no version relays an upgraded connection any more.
async fn relays_ended(router: &Router) {
    while router
        .all_versions()
        .iter()
        .any(|version| version.upgraded() > 0)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
