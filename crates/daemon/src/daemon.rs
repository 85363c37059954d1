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
use crate::deploy_tally::DeployTally;
use crate::error::DaemonError;
use crate::flag_service::{self, FlagService};
use crate::flags_api::{self, Caller};
use crate::handoff::{HandedSocket, SocketRole};
use crate::listeners;
use crate::metrics_endpoint::{self, MetricsEndpoint};
use crate::process_table::ProcessTable;
use crate::rollup_writer;
use crate::route_manager::RouteManager;
use crate::takeover::{OpenSockets, TakeOver};
use crate::upgrade::{
    DEFAULT_READY_TIMEOUT, Sockets, UpgradeError, UpgradeRequest, Upgraded, hand_over,
};
use baton_supervisor::{LogRotation, RestartPolicy};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};

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
    let flags = Arc::new(FlagService::load(
        Arc::clone(&store),
        flag_service::hostname(),
    )?);
    let tls = if config.https.is_empty() && config.tls_cert.is_none() {
        None
    } else {
        match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(TlsAcceptor::from(server_config(cert, key)?)),
            _ => return Err(DaemonError::TlsMissing),
        }
    };
    let mut take_over = TakeOver::from_env()?;
    let OpenSockets {
        public,
        admin,
        control,
    } = match &mut take_over {
        Some(take_over) => take_over.sockets(&config.socket_path())?,
        None => bind_sockets(&config).await?,
    };
    if public.iter().any(|listener| listener.https) && tls.is_none() {
        return Err(DaemonError::TlsMissing);
    }
    let mut terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut upgrade_signal = signal(SignalKind::user_defined2()).map_err(DaemonError::Signals)?;
    // Duplicates of every socket, kept for a later `baton upgrade`.
    let mut handed = Sockets::default();
    let keep = |error: std::io::Error| DaemonError::Handoff {
        reason: format!("cannot keep a socket for a later upgrade: {error}"),
    };
    for listener in &public {
        let role = if listener.https {
            SocketRole::Https
        } else {
            SocketRole::Http
        };
        handed
            .add(
                HandedSocket {
                    role,
                    inherited: listener.inherited,
                },
                &listener.listener,
            )
            .map_err(keep)?;
    }
    if let Some((listener, _)) = &admin {
        handed
            .add(plain(SocketRole::Admin), listener)
            .map_err(keep)?;
    }
    handed
        .add(plain(SocketRole::Control), &control)
        .map_err(keep)?;
    handed
        .add(plain(SocketRole::Log), std::io::stderr())
        .map_err(keep)?;
    let admin = admin.map(|(listener, address)| {
        let token = config.admin.as_ref().map(|admin| AdminTokens {
            admin: admin.token.clone(),
            flags: admin.flags_token.clone(),
        });
        (listener, address, token)
    });

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
    let deploys = Arc::new(DeployTally::load(&host.store));
    let metrics = Arc::new(MetricsEndpoint::new(
        Arc::clone(&routes),
        Arc::clone(&host.processes),
        Arc::clone(&deploys),
        Arc::clone(&flags),
    ));
    let store = Arc::clone(&host.store);
    let apps = AppManager::new(host, deploys);
    let rollups_stop = CancellationToken::new();
    let rollups = rollup_writer::spawn(store, Arc::clone(&routes), rollups_stop.clone());
    if take_over.is_some() {
        // The old daemon keeps serving until this one says ready: first
        // let the adopted versions prove healthy here too.
        wait_first_health(&router, READY_HEALTH_WAIT).await;
    }

    let (upgrades, mut upgrade_requests) = mpsc::channel(1);
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
        upgrades,
    }))
    .merge(flags_api::router(Arc::clone(&flags), Caller::Socket, "/v1"));
    let api = api.merge(metrics_endpoint::router(
        Arc::clone(&metrics),
        "/v1/metrics",
    ));
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
    let admin_task = admin
        .and_then(|(listener, _, token)| token.map(|token| (listener, token)))
        .map(|(listener, token)| {
            let api = admin_api::router(
                Arc::clone(&apps),
                Arc::clone(&metrics),
                token,
                Arc::clone(&flags),
                api_stop.clone(),
            )
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
    match take_over {
        Some(take_over) => {
            let old_pid = take_over.old_pid();
            take_over.ready();
            tracing::info!(old_pid, "Took over from the old daemon, which now drains");
            // systemd follows the new process (needs NotifyAccess=all).
            let _ = sd_notify::notify(&[
                sd_notify::NotifyState::MainPid(std::process::id()),
                sd_notify::NotifyState::Ready,
            ]);
        }
        None => {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        }
    }

    let ending = loop {
        let request = tokio::select! {
            _ = terminate.recv() => break Ending::Signal("SIGTERM"),
            _ = interrupt.recv() => break Ending::Signal("SIGINT"),
            _ = upgrade_signal.recv() => UpgradeCall {
                request: UpgradeRequest {
                    binary: None,
                    ready_timeout: DEFAULT_READY_TIMEOUT,
                },
                reply: None,
            },
            Some(call) = upgrade_requests.recv() => call,
        };
        let result = upgrade(&apps, state_dir, &handed, &request.request).await;
        match &result {
            Ok(upgraded) => tracing::info!(
                new_pid = upgraded.pid,
                ready_ms = u64::try_from(upgraded.ready_after.as_millis()).unwrap_or(u64::MAX),
                "Handed over to the new daemon; draining"
            ),
            Err(error) => tracing::error!(%error, "Upgrade failed"),
        }
        let handed_over = result.is_ok();
        if let Some(reply) = request.reply {
            let _ = reply.send(result.map_err(|error| error.to_string()));
        }
        if handed_over {
            break Ending::HandedOver;
        }
    };
    let handed_over = matches!(ending, Ending::HandedOver);
    // The copies kept for a hand-over would keep the listening sockets open
    // (the kernel accepting into their backlog) after the server stops
    // accepting: close them, so a stopping daemon refuses new connections.
    drop(handed);
    match ending {
        Ending::Signal(signal_name) => {
            tracing::info!(signal = signal_name, drain_timeout = ?config.drain_timeout, "Stopping");
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        }
        Ending::HandedOver => {
            // The new daemon accepts on the same sockets, the control socket
            // included: stop taking requests there now. It supervises the
            // apps from now on; two supervisors would restart a crashed
            // process twice.
            api_stop.cancel();
            apps.detach();
        }
    }

    let deadline = tokio::time::Instant::now() + config.drain_timeout;
    let report = server.shutdown(config.drain_timeout).await;
    // Upgraded connections outlive their client connection task. At a stop
    // they get what is left of the drain; after a hand-over they are the
    // last thing this process serves, so they get `upgrade_grace`.
    let relay_deadline = if handed_over {
        tokio::time::Instant::now() + config.upgrade_grace
    } else {
        deadline
    };
    let _ = tokio::time::timeout_at(relay_deadline, relays_ended(&router)).await;
    shutdown.cancel();
    let _ = tokio::time::timeout(CLOSE_GRACE, relays_ended(&router)).await;
    // Every request has ended: the minute so far goes to the rollups.
    rollups_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), rollups).await;
    api_stop.cancel();
    // The apps outlive the daemon: the next one adopts them (after a
    // hand-over it already has).
    apps.detach();
    let _ = tokio::time::timeout(Duration::from_secs(1), api_task).await;
    if let Some(admin_task) = admin_task {
        let _ = tokio::time::timeout(Duration::from_secs(1), admin_task).await;
    }
    if !handed_over {
        let _ = std::fs::remove_file(&socket_path);
    }
    tokio::task::spawn_blocking(move || workers.stop())
        .await
        .ok();
    tracing::info!(connections_cut = report.connections_cut, "Stopped");
    Ok(())
}

/// How the serving part of the daemon's life ended.
enum Ending {
    /// Told to stop.
    Signal(&'static str),
    /// A new daemon took over the sockets.
    HandedOver,
}

/// An upgrade asked for through the control API (with somewhere to send
/// the result) or by SIGUSR2 (logged only).
pub struct UpgradeCall {
    /// What to start.
    pub request: UpgradeRequest,
    /// Where the result goes.
    pub reply: Option<oneshot::Sender<Result<Upgraded, String>>>,
}

/// Hands over to a new daemon, unless a deploy runs: a deploy's effects
/// live in this process's tasks, so it is refused up front rather than
/// left half done. New deploys are refused while the hand-over runs.
async fn upgrade(
    apps: &AppManager,
    state_dir: &std::path::Path,
    sockets: &Sockets,
    request: &UpgradeRequest,
) -> Result<Upgraded, UpgradeError> {
    apps.begin_handover().map_err(UpgradeError::Busy)?;
    let result = hand_over(state_dir, sockets, request).await;
    if result.is_err() {
        apps.end_handover();
    }
    result
}

/// How long a new daemon waits for the versions it adopted to pass a
/// health check before it accepts anyway (a request to a version not yet
/// known healthy waits for its first check in the proxy).
const READY_HEALTH_WAIT: Duration = Duration::from_secs(5);

/// Waits, up to `limit`, until every routed version has been healthy once.
async fn wait_first_health(router: &Router, limit: Duration) {
    let versions = router.all_versions();
    let waits = versions
        .iter()
        .filter(|version| !version.targets().is_empty())
        .map(|version| version.wait_first_healthy(limit));
    futures_util::future::join_all(waits).await;
}

fn plain(role: SocketRole) -> HandedSocket {
    HandedSocket {
        role,
        inherited: false,
    }
}

/// Binds the public listeners (or takes systemd's), the admin listener and
/// the control socket: a taken address stops the start before the control
/// socket exists or any app is restored.
async fn bind_sockets(config: &DaemonConfig) -> Result<OpenSockets, DaemonError> {
    let public = listeners::open(config)?;
    let admin = match &config.admin {
        Some(admin) => Some(bind_admin(admin.address).await?),
        None => None,
    };
    let control = OwnerOnlyListener::bind(&config.socket_path()).await?;
    Ok(OpenSockets {
        public,
        admin,
        control,
    })
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
