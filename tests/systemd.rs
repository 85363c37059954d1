//! systemd integration: readiness notification and socket activation.
