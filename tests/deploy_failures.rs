//! End-to-end deploys that fail, and daemon crashes during deploys.
