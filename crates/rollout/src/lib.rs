//! The deploy pipeline.
