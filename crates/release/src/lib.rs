//! Releases on disk.
