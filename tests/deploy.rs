//! End-to-end deploys of the demo app under load.
