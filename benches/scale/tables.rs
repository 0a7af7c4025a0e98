//! The scenario tables of `docs/benchmarks.md`: one column per N, cells
//! "median (min–max)" over the repetitions, and the apiserver requests per
//! replica.

use std::fmt::Write as _;

use crate::Config;
use crate::results::{Results, Stats};

#[derive(Clone, Copy)]
pub enum Unit {
    Secs,
    Count,
    Mib,
}

/// One table row: a measurement key, its label and unit.
struct Row(String, String, Unit);

/// A number without needless decimals: counts as integers, others to 3 digits.
pub fn trim(v: f64) -> String {
    match v.fract() == 0.0 {
        true => format!("{v:.0}"),
        false if v.abs() >= 10.0 => format!("{v:.1}"),
        false => format!("{v:.3}"),
    }
}

pub fn number(v: Option<f64>, unit: Unit) -> String {
    let Some(v) = v else {
        return "n/a".to_owned();
    };
    match unit {
        Unit::Secs => format!("{v:.2} s"),
        Unit::Count => trim(v),
        Unit::Mib => format!("{v:.1} MiB"),
    }
}

fn cell(stats: Option<Stats>, unit: Unit) -> String {
    match stats {
        None => "n/a".to_owned(),
        Some(s) if s.min == s.max => number(Some(s.median), unit),
        Some(s) => format!(
            "{} ({}–{})",
            number(Some(s.median), unit),
            number(Some(s.min), unit),
            number(Some(s.max), unit)
        ),
    }
}

/// A table: one row per (label, cells), one column per N.
fn table(
    results: &Results,
    first: &str,
    rows: impl IntoIterator<Item = (String, Vec<String>)>,
) -> String {
    let sizes = results.sizes();
    let mut out = format!("| {first} |");
    for n in &sizes {
        let _ = write!(out, " N = {n} |");
    }
    out += "\n|---|";
    out += &"---:|".repeat(sizes.len());
    out += "\n";
    for (label, cells) in rows {
        let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
    }
    out
}

fn measurements(results: &Results, rows: &[Row]) -> String {
    let sizes = results.sizes();
    let rows = rows.iter().map(|Row(key, label, unit)| {
        let cells = sizes
            .iter()
            .map(|&n| cell(results.stats(n, key), *unit))
            .collect();
        (label.to_string(), cells)
    });
    table(results, "measurement", rows)
}

/// Requests of `scenario` per unit (`per(n)` units at size n): the
/// operator's, and the cluster-wide counters with the requests another
/// client sent meanwhile (in total).
fn requests(results: &Results, scenario: &str, per: impl Fn(usize) -> f64) -> String {
    let cluster = format!("{scenario}.cluster");
    let mut out = String::from("The operator's requests:\n\n");
    out += &request_table(results, scenario, &per, None);
    out += "\nCluster-wide, by code class:\n\n";
    let foreign = format!("{scenario}.foreign");
    out += &request_table(results, &cluster, &per, Some(&foreign));
    out
}

/// One row per request key of `scenario`, plus the measurement `extra` (in total).
fn request_table(
    results: &Results,
    scenario: &str,
    per: &impl Fn(usize) -> f64,
    extra: Option<&str>,
) -> String {
    let sizes = results.sizes();
    let rows = results.request_keys(scenario).into_iter().map(|key| {
        let cells = sizes
            .iter()
            .map(|&n| {
                cell(
                    results.request_stats(n, scenario, &key, per(n)),
                    Unit::Count,
                )
            })
            .collect();
        (format!("`{key}`"), cells)
    });
    let extra = extra.map(|key| {
        let cells = sizes
            .iter()
            .map(|&n| cell(results.stats(n, key), Unit::Count))
            .collect();
        (
            "GenericSecret requests of another client (total)".to_owned(),
            cells,
        )
    });
    table(results, "request", rows.chain(extra))
}

pub fn sections(config: &Config, results: &Results) -> String {
    let mut out = raw_and_times(results);
    out += &many_objects(config, results);
    out += "\n## 5. No-op restart\n\nAfter scenario 4 converged the operator is stopped \
            (SIGTERM) and started again with the same flags; what it wrote until 20 s after \
            it was ready again.\n\n";
    let mut rows = window_rows("restart");
    rows.push(row(
        "restart.reconciles",
        "successful reconciles after the restart",
        Unit::Count,
    ));
    out += &measurements(results, &rows);
    out += &memory(config, results);
    out += &requests_section(results);
    out += &crate::rest::section(results);
    out
}

fn row(key: &str, label: &str, unit: Unit) -> Row {
    Row(key.to_owned(), label.to_owned(), unit)
}

fn raw_and_times(results: &Results) -> String {
    use Unit::{Count, Secs};
    let mut out = String::from(
        "\n## 1. Raw client baseline\n\nThe bench's client writing 1 KiB Secrets, one per \
         resource group unless stated; deletes are untimed.\n\n",
    );
    out += &measurements(
        results,
        &[
            row("raw.create.c1", "create N, concurrency 1", Secs),
            row("raw.create.c8", "create N, concurrency 8", Secs),
            row("raw.create.c32", "create N, concurrency 32", Secs),
            row("raw.apply", "server-side apply N, concurrency 32", Secs),
            row("raw.apply5n", "server-side apply 5N, concurrency 32", Secs),
            row(
                "raw.writes3x2n",
                "create + 2 applies for 2N, concurrency 32",
                Secs,
            ),
            row(
                "raw.objects2n",
                "2N GenericSecrets: create, finalizer, Secret, status, concurrency 32",
                Secs,
            ),
            row(
                "raw.create.shaped.unwatched",
                "create N replica-shaped Secrets, concurrency 32",
                Secs,
            ),
            row(
                "raw.rotate5n.shaped.unwatched",
                "rotate 5N replica-shaped Secrets as the operator does (JSON patch), concurrency 32",
                Secs,
            ),
            row(
                "raw.apply5n.shaped.unwatched",
                "the same rotation as server-side applies, concurrency 32",
                Secs,
            ),
            row(
                "raw.create.shaped",
                "create N replica-shaped Secrets, watched, concurrency 32",
                Secs,
            ),
            row(
                "raw.rotate5n.shaped",
                "rotate 5N replica-shaped Secrets (JSON patch), watched, concurrency 32",
                Secs,
            ),
            row(
                "raw.objects2n.shaped",
                "2N GenericSecrets as above, replica-shaped Secrets, 3 watches, concurrency 32",
                Secs,
            ),
        ],
    );
    out += "\n## 2. Fan-out\n\nOne tenant-wide object created; time until its \
            `resourceGroupSecretReplicationStatus` has N entries, all `true`, at its \
            generation.\n\n";
    out += &measurements(results, &[row("fanout.secs", "fan-out", Secs)]);
    out += "\n## 3. Rotation\n\n5 tenant-wide objects replicated, then new data for all 5 \
            at once (concurrent patches); time until all 5 report the new generation and \
            data hash with every resource group `true`.\n\n";
    out += &measurements(
        results,
        &[
            row("rotation.secs", "rotation", Secs),
            row("rotation.cpu", "operator CPU seconds", Count),
            row(
                "rotation.cp_cpu",
                "kube-apiserver + etcd CPU seconds",
                Count,
            ),
            row("rotation.bench_cpu", "bench CPU seconds", Count),
        ],
    );
    out
}

fn many_objects(config: &Config, results: &Results) -> String {
    use Unit::{Count, Secs};
    let mut out = format!(
        "\n## 4. Many objects\n\nWith the 5 tenant-wide objects in place, 2 resource-group \
         objects (`object-store`, `hf-token`) in each of the N namespaces, created at \
         concurrency 32; time from the first create until all 2N are Ready at their \
         generation, then a quiet window of {} s without changes. Reconciles and CPU \
         seconds are the operator's own.\n\n",
        config.quiet.as_secs()
    );
    let mut rows = vec![
        row("many.secs", "all 2N ready", Secs),
        row("many.cpu", "operator CPU seconds until then", Count),
        row(
            "many.cp_cpu",
            "kube-apiserver + etcd CPU seconds until then",
            Count,
        ),
        row("many.bench_cpu", "bench CPU seconds until then", Count),
        row("many.reconciles", "successful reconciles until then", Count),
        row("many.failed", "failed reconciles until then", Count),
        row("quiet.cpu", "quiet window: operator CPU seconds", Count),
        row("quiet.reconciles", "quiet window: reconciles", Count),
        row("quiet.failed", "quiet window: failed reconciles", Count),
    ];
    rows.extend(window_rows("quiet"));
    out += &measurements(results, &rows);
    out
}

/// The rows `Window::record_writes` fills for `prefix`.
fn window_rows(prefix: &str) -> Vec<Row> {
    [
        ("secret_writes", "operator's writes to Secrets"),
        ("status_writes", "operator's writes to GenericSecret status"),
        (
            "object_writes",
            "operator's writes to GenericSecrets (finalizers)",
        ),
        ("event_writes", "operator's Events written"),
        ("secret_changes", "replica Secrets changed (watch)"),
        ("object_changes", "GenericSecrets changed (watch)"),
        (
            "foreign",
            "GenericSecret requests of another client (cluster-wide)",
        ),
    ]
    .into_iter()
    .map(|(key, label)| {
        row(
            &format!("{prefix}.{key}"),
            &format!("{prefix}: {label}"),
            Unit::Count,
        )
    })
    .collect()
}

fn memory(config: &Config, results: &Results) -> String {
    let mut out = format!(
        "\n## 6. Memory\n\nSettled VmRSS of the operator with scenario 4's objects in place \
         and {} unrelated 1 KiB Secrets in a namespace it does not select. The operator \
         runs with `MALLOC_ARENA_MAX=2` and `MALLOC_MMAP_THRESHOLD_=131072`, as its image sets \
         them (see the Dockerfile).\n\n",
        config.unrelated
    );
    out += &measurements(results, &[row("rss.mib", "operator RSS", Unit::Mib)]);
    let idle = |key| number(results.global(key), Unit::Mib);
    let _ = write!(
        out,
        "\nAn operator without GenericSecrets: {} before the unrelated Secrets existed, {} \
         after.\n",
        idle("idle.rss_before"),
        idle("idle.rss_after")
    );
    out
}

fn requests_section(results: &Results) -> String {
    let mut out = String::from(
        "\n## 7. Apiserver requests per replica\n\nThe operator runs as its own \
         ServiceAccount, and FlowSchemas that match only it count its requests by resource \
         and verb (`apiserver_flowcontrol_dispatched_requests_total`; `PATCH` includes \
         server-side apply): exact even when other clients share the control plane. Below \
         them, the apiserver's `apiserver_request_total` by resource, verb and code class: \
         every request on Secrets and the writes on GenericSecrets, less the bench's own \
         creates and patches. Those counters are cluster-wide: when their last row is not 0, \
         another client used the control plane meanwhile and its requests are in the other \
         rows too. Both divided by the replicas written.\n\n### Fan-out, per replica (N)\n\n",
    );
    out += &requests(results, "fanout", |n| n as f64);
    out += "\n### Rotation, per replica (5N)\n\n";
    out += &requests(results, "rotation", |n| 5.0 * n as f64);
    out += "\n### Many objects, per object (2N)\n\n";
    out += &requests(results, "many", |n| 2.0 * n as f64);
    out
}
