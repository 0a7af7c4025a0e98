//! generic-secrets-operator: SAP AI Core generic secrets as Kubernetes objects.
//!
//! The library holds everything; `main.rs` only parses flags and starts it.
#![forbid(unsafe_code)]

pub mod api;
pub mod controller;
pub mod http;
pub mod index;
pub mod leader;
pub mod metrics;
pub mod plan;
pub mod preview;
pub mod replicas;
pub mod rest;
pub mod shutdown;
pub mod telemetry;
