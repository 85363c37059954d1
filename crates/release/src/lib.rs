//! Releases on disk: an app root holds `releases/<id>/`, `shared/` and a
//! `current` link. This crate stages a release from a directory or a git
//! repository, links shared paths and old assets into it, runs build commands
//! in it, switches `current` atomically and decides which releases to prune.
//!
//! It only touches files under an app root and the processes of the build
//! commands it runs. It must not start app processes (the supervisor does),
//! touch the proxy, or read or write the state database: callers record what
//! happened.
#![deny(missing_docs)]

mod app_root;
mod assets;
mod build_command;
mod command_error;
mod disk;
mod env_file;
mod error;
mod git_checkout;
mod release_id;
mod release_meta;
mod release_path;
mod retention;
mod shared_links;
mod source;
mod staging;
mod tree_copy;

#[cfg(test)]
mod test_support;

pub use app_root::AppRoot;
pub use assets::link_assets;
pub use build_command::{run_command, run_command_with_input};
pub use command_error::CommandError;
pub use env_file::load_env_file;
pub use error::ReleaseError;
pub use release_id::{is_valid_release_id, release_id};
pub use release_meta::ReleaseMeta;
pub use retention::retention;
pub use shared_links::link_shared;
pub use source::Source;
pub use staging::{StagedRelease, stage};
