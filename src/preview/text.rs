//! The human-readable form of a [`Preview`] (`preview`'s default output).
//! Pure: returns the text.

use std::fmt::Write;

use super::{Action, Preview, SecretAction, Verdict};

pub fn render(p: &Preview) -> String {
    let mut out = String::new();
    let state = if p.exists {
        "existing object"
    } else {
        "new object"
    };
    let _ = writeln!(
        out,
        "GenericSecret {} ({}, Secret name {:?}, {state})",
        p.object, p.scope, p.secret_name
    );
    let _ = writeln!(
        out,
        "Ready would be {} ({}): {}",
        p.ready.status, p.ready.reason, p.ready.message
    );
    if let Some(replicated) = &p.replicated {
        let _ = writeln!(out, "Replicated: {replicated}");
    }
    if p.secrets.is_empty() {
        let _ = writeln!(out, "\nNo Secret is written or deleted.");
    } else {
        let _ = writeln!(out, "\nSecrets:");
        for s in &p.secrets {
            let _ = writeln!(out, "  {}", line(s));
        }
    }
    for note in &p.notes {
        let _ = writeln!(out, "\nNote: {note}");
    }
    let _ = writeln!(out, "\n{}", verdict(p.verdict));
    out
}

fn line(s: &SecretAction) -> String {
    let group = s
        .resource_group
        .as_deref()
        .map(|rg| format!(" [resource group {rg}]"))
        .unwrap_or_default();
    let mut line = format!("{:<9} {}/{}{group}", label(s.action), s.namespace, s.name);
    if let Some(message) = &s.message {
        let _ = write!(line, ": {message}");
    }
    line
}

fn label(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Unchanged => "unchanged",
        Action::Adopt => "adopt",
        Action::Conflict => "CONFLICT",
        Action::Leave => "leave",
        Action::Delete => "delete",
    }
}

fn verdict(v: Verdict) -> String {
    let what = match v {
        Verdict::Replicates => "it would replicate (or resolves by itself)",
        Verdict::Blocked => "it would be blocked and write nothing",
        Verdict::NeedsAction => "it would replicate only in part; someone must act",
    };
    format!("Verdict: {what} (exit code {})", v.exit_code())
}
