//! The baton daemon: wires the proxy, the route manager, the state store,
//! the control API and the admin API together, owns the process's life
//! (listeners, systemd readiness, signals, graceful shutdown), and carries
//! out deploys: the effects the rollout pipeline asks for, on real release
//! directories, processes and routes.
//!
//! It must not hold decisions of its own beyond wiring: routing lives in
//! `baton-proxy`, persistence in `baton-state`, wire types in `baton-api`,
//! the order of a deploy's stages in `baton-rollout`, release directories in
//! `baton-release`, process supervision in `baton-supervisor`.
#![deny(missing_docs)]

mod admin_access;
mod admin_api;
mod admin_token;
mod app_budget;
mod app_env;
mod app_host;
mod app_manager;
mod app_migrations;
mod app_restore;
mod app_run;
mod app_status;
mod config;
mod control_api;
mod control_socket;
mod daemon;
mod dashboard;
mod dashboard_series;
mod dashboard_sessions;
mod dashboard_snapshot;
mod departed_versions;
mod deploy_log;
mod deploy_tally;
mod error;
mod external_metric;
mod flag_annotator;
mod flag_service;
mod flag_settings;
mod flag_staleness;
mod flag_summary;
mod flag_tally;
mod flags_api;
mod handoff;
mod listeners;
mod metrics_endpoint;
mod notifier;
mod ofrep;
mod ofrep_context;
mod plain_http;
mod post_deploy_report;
mod process_spec;
mod process_table;
mod retired_versions;
mod rollout_controller;
mod rollup_history;
mod rollup_writer;
mod route_manager;
mod run_notices;
mod smoke_check;
mod takeover;
mod upgrade;

pub use admin_token::{ADMIN_TOKEN_ENV, AdminToken, AdminTokenError, FLAGS_TOKEN_ENV};
pub use app_migrations::migrate_settings;
pub use config::{AdminConfig, DaemonConfig, default_state_dir};
pub use daemon::run;
pub use error::DaemonError;
