//! A whole probe run: check the settings, resolve the host, start the
//! workers, wait for them (bounded), and merge their counts into a report.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use crate::config::{Plan, ProbeConfig, Target};
use crate::connection::{Connector, SharedHttp2};
use crate::error::ProbeError;
use crate::report::{Report, Tally};
use crate::tls;
use crate::worker::{self, Schedule, Shared};

/// Slack given to workers beyond `duration + timeout` before the run is
/// declared stuck.
const GRACE: Duration = Duration::from_secs(5);

/// Probes `config.url` until `config.duration` ends (or `config.requests`
/// requests were sent) and reports what happened.
///
/// Fails only if the probe cannot start (bad settings, unreadable CA file,
/// unresolvable host); failed requests are counted in the [`Report`].
pub async fn run(config: ProbeConfig) -> Result<Report, ProbeError> {
    run_until(config, std::future::pending()).await
}

/// Like [`run`], but also ends early when `stop` completes (e.g. on
/// Ctrl-C): no new requests start, requests in flight finish (each bounded
/// by the timeout), and the report covers everything sent so far.
pub async fn run_until(
    config: ProbeConfig,
    stop: impl Future<Output = ()>,
) -> Result<Report, ProbeError> {
    let plan = Plan::from_config(&config)?;
    let tls = if plan.target.https {
        Some((
            tls::connector(config.ca_file.as_deref(), config.insecure, plan.http2)?,
            tls::server_name(&plan.target.host)?,
        ))
    } else {
        None
    };
    let addrs = resolve(&plan.target, plan.timeout).await?;
    let (concurrency, timeout) = (plan.concurrency, plan.timeout);

    let start = Instant::now();
    let deadline = start + plan.duration;
    let shared = Arc::new(Shared {
        schedule: Schedule::new(start, deadline, plan.rate, plan.requests),
        plan,
        connector: Connector::new(addrs, tls),
        http2: SharedHttp2::default(),
    });
    let (stop_workers, stop_rx) = watch::channel(false);
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        workers.spawn(worker::work(shared.clone(), stop_rx.clone(), Tally::new()?));
    }

    let mut total = Tally::new()?;
    let mut stuck_at = deadline + timeout + GRACE;
    let mut stop = pin!(stop);
    let mut stopping = false;
    loop {
        tokio::select! {
            joined = timeout_at(stuck_at, workers.join_next()) => match joined {
                Ok(None) => break,
                Ok(Some(Ok(tally))) => total.merge(&tally)?,
                Ok(Some(Err(e))) => {
                    workers.abort_all();
                    return Err(ProbeError::Internal(format!("a probe worker failed: {e}")));
                }
                Err(_) => {
                    workers.abort_all();
                    return Err(ProbeError::Internal(format!(
                        "{} probe workers did not stop within {:?} after the end",
                        workers.len(),
                        timeout + GRACE
                    )));
                }
            },
            () = &mut stop, if !stopping => {
                stopping = true;
                let _ = stop_workers.send(true);
                stuck_at = stuck_at.min(Instant::now() + timeout + GRACE);
            }
        }
    }
    let elapsed = start.elapsed();
    let count_header = config.count_header.map(|name| name.trim().to_owned());
    Ok(total.into_report(config.url, elapsed, shared.connector.opened(), count_header))
}

/// The addresses of the target, tried in order when connecting.
async fn resolve(target: &Target, timeout: Duration) -> Result<Vec<SocketAddr>, ProbeError> {
    if let Ok(ip) = target.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let failed = |reason: String| ProbeError::Resolve {
        host: target.host.clone(),
        reason,
    };
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    match tokio::time::timeout(timeout, lookup).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<_> = addrs.collect();
            if addrs.is_empty() {
                Err(failed("it has no addresses".to_owned()))
            } else {
                Ok(addrs)
            }
        }
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed(format!("no answer within {timeout:?}"))),
    }
}
