//! Integration tests against a real kube-apiserver (one binary, one shared
//! control plane; see `harness`).

mod argocd;
mod chart;
mod faults;
mod foundation;
mod generic_secrets;
mod harness;
mod health;
mod kstatus;
mod leader;
mod operator;
mod preview;
mod rbac;
mod recovery;
mod rest;
mod rollout;
mod rotations;
mod scale;
mod sdk;
mod shutdown;
mod validation;
