//! The control API of the baton daemon: the wire types both sides agree on and
//! the client the CLI (and the test harness) use to talk to the daemon over its
//! Unix socket.
//!
//! This crate holds no behaviour of the daemon: it must not route traffic, read
//! state or decide anything; it only describes requests and answers and carries
//! them.
#![deny(missing_docs)]

mod app_config;
mod apps;
mod client;
mod daemon_info;
mod error;
mod flags;
mod migrate_config;
mod notify_config;
mod post_deploy_report;
mod routes;
mod targeting_key;

pub use app_config::{
    AppConfig, AppName, AppSection, Availability, BuildSection, ConfigError, DurationText,
    FlagsSection, GuardrailConfig, GuardrailLimit, GuardrailMetric, HooksSection, HttpMethod,
    Percent, RelativePath, RolloutSection, RolloutStrategy, SloSection, SloWindow, SmokeCheck,
    StopSignal, UrlPath, WebSection, WorkerSection,
};
pub use apps::{
    AppInfo, AppStatus, BudgetStatus, DeployEvent, DeployKind, DeployOutcomeKind, DeployReport,
    DeployRequest, DeploySource, HistoryEntry, ProcessInfo, ReleaseInfo, RollbackRequest,
    RolloutCommand, RolloutRequest, RolloutStatus, StageTiming, StatusRole, TrafficSummary,
    VersionStatus,
};
pub use baton_telemetry::WindowSnapshot;
pub use client::{Client, check_service_name, is_host_name};
pub use daemon_info::{DaemonInfo, ListenerInfo, UpgradeOutcome, UpgradeRequest};
pub use error::{ApiError, ErrorBody};
pub use flags::{
    DEFAULT_STALE_DAYS, FlagActor, FlagAuditEntry, FlagChanged, FlagExport, FlagImportRequest,
    FlagInfo, FlagInjection, FlagList, FlagSetRequest, FlagSettings, FlagState, StaleFlag,
    StaleFlags, VariantWeight, check_flag_name,
};
pub use migrate_config::{EnvVarName, MigrateSection};
pub use notify_config::{MAX_NOTIFY_RETRIES, NotifyTarget};
pub use post_deploy_report::{BASELINE_DAYS, PostDeployReport};
pub use routes::{
    Balance, DeployOutcome, DeployRoute, PauseRequest, PauseState, RouteInfo, TargetInfo,
    VersionInfo, VersionRole,
};
pub use targeting_key::TargetingKey;
