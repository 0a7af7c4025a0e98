//! Prometheus text parsing, shared by the apiserver's and the operator's
//! `/metrics`, and the counter sets the scenarios subtract.
//!
//! Apiserver requests are summed by resource (with `/subresource`), verb and
//! code class into keys like `secrets POST 2xx` or `genericsecrets/status
//! PATCH 2xx`.

use std::collections::BTreeMap;

/// Counter values by key; `delta` subtracts two scrapes.
pub type Counters = BTreeMap<String, f64>;

/// Verbs that change an object.
pub const WRITE_VERBS: [&str; 5] = ["POST", "PUT", "PATCH", "APPLY", "DELETE"];

/// One sample line: metric name, labels, value.
pub struct Sample<'a> {
    pub name: &'a str,
    labels: Vec<(&'a str, String)>,
    pub value: f64,
}

impl Sample<'_> {
    pub fn label(&self, key: &str) -> &str {
        self.labels
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// The samples of a text exposition (comments skipped).
pub fn samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(parse_line)
}

fn parse_line(line: &str) -> Option<Sample<'_>> {
    let (head, value) = line.trim_end().rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match head.split_once('{') {
        Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)?),
        None => (head, Vec::new()),
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// `a="x",b="y \"quoted\""` into pairs.
fn parse_labels(mut rest: &str) -> Option<Vec<(&str, String)>> {
    let mut labels = Vec::new();
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') => value.push(match chars.next()?.1 {
                    'n' => '\n',
                    other => other,
                }),
                (i, '"') => break i,
                (_, c) => value.push(c),
            }
        };
        labels.push((key.trim(), value));
        rest = after[end + 1..].trim_start_matches([',', ' ']);
    }
    Some(labels)
}

/// `apiserver_request_total` for Secrets and GenericSecrets, by
/// `resource[/subresource] VERB Nxx`.
pub fn apiserver_requests(text: &str) -> Counters {
    let mut counters = Counters::new();
    for s in samples(text).filter(|s| s.name == "apiserver_request_total") {
        let resource = s.label("resource");
        if resource != "secrets" && resource != "genericsecrets" {
            continue;
        }
        let resource = match s.label("subresource") {
            "" => resource.to_owned(),
            sub => format!("{resource}/{sub}"),
        };
        let class = s.label("code").chars().next().unwrap_or('?');
        let key = format!("{resource} {} {class}xx", s.label("verb"));
        *counters.entry(key).or_default() += s.value;
    }
    counters
}

/// The operator's reconciles so far: (successes, failures).
pub fn reconciles(text: &str) -> (f64, f64) {
    let mut counts = (0.0, 0.0);
    for s in samples(text).filter(|s| s.name == "generic_secrets_operator_reconciles_total") {
        match s.label("outcome").to_ascii_lowercase().as_str() {
            "success" => counts.0 += s.value,
            "failure" => counts.1 += s.value,
            _ => {}
        }
    }
    counts
}

/// `after - before`, keeping only keys that changed.
pub fn delta(before: &Counters, after: &Counters) -> Counters {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v != 0.0)
        .collect()
}

/// Whether `key` is a write to `resource` (e.g. `secrets`, `genericsecrets/status`).
pub fn is_write_to(key: &str, resource: &str) -> bool {
    let mut parts = key.split(' ');
    parts.next() == Some(resource) && parts.next().is_some_and(|v| WRITE_VERBS.contains(&v))
}

/// All writes to `resource` in `counters`.
pub fn writes_to(counters: &Counters, resource: &str) -> f64 {
    let writes = counters.iter().filter(|(k, _)| is_write_to(k, resource));
    // + 0.0: an empty f64 sum is -0.
    writes.map(|(_, v)| v).sum::<f64>() + 0.0
}
