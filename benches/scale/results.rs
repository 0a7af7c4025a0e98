//! What the scenarios measured: one sample per repetition for each size N
//! and measurement name (e.g. `fanout.secs`), apiserver request deltas per
//! repetition, and values measured once per run. Summaries are median, min
//! and max over the repetitions.

use std::collections::{BTreeMap, BTreeSet};

use crate::metrics::Counters;

#[derive(Default)]
pub struct Results {
    samples: BTreeMap<usize, BTreeMap<String, Vec<f64>>>,
    /// Request deltas by N and scenario, one map per repetition.
    requests: BTreeMap<usize, BTreeMap<String, Vec<Counters>>>,
    global: BTreeMap<String, f64>,
}

#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    pub fn of(values: &[f64]) -> Option<Stats> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = match sorted.len() {
            0 => return None,
            len if len % 2 == 1 => sorted[mid],
            _ => (sorted[mid - 1] + sorted[mid]) / 2.0,
        };
        Some(Stats {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }
}

impl Results {
    /// Every sample, a line per N and name (`GSO_BENCH_ONLY=tenant-wide`).
    pub fn print(&self) {
        for (n, by_key) in &self.samples {
            for (key, values) in by_key {
                println!("N={n} {key} {values:.3?}");
            }
        }
    }

    pub fn record(&mut self, n: usize, key: impl Into<String>, value: f64) {
        let by_key = self.samples.entry(n).or_default();
        by_key.entry(key.into()).or_default().push(value);
    }

    /// The apiserver request deltas of one repetition of `scenario`.
    pub fn record_requests(&mut self, n: usize, scenario: &str, counters: Counters) {
        let by_scenario = self.requests.entry(n).or_default();
        by_scenario
            .entry(scenario.to_owned())
            .or_default()
            .push(counters);
    }

    pub fn set_global(&mut self, key: &str, value: f64) {
        self.global.insert(key.to_owned(), value);
    }

    pub fn global(&self, key: &str) -> Option<f64> {
        self.global.get(key).copied()
    }

    /// The sizes measured, ascending.
    pub fn sizes(&self) -> Vec<usize> {
        self.samples.keys().copied().collect()
    }

    pub fn stats(&self, n: usize, key: &str) -> Option<Stats> {
        Stats::of(self.samples.get(&n)?.get(key)?)
    }

    /// Every request key `scenario` saw at any size.
    pub fn request_keys(&self, scenario: &str) -> BTreeSet<String> {
        self.requests
            .values()
            .filter_map(|s| s.get(scenario))
            .flatten()
            .flat_map(|c| c.keys().cloned())
            .collect()
    }

    /// Requests `key` of `scenario` at size `n`, divided by `per`; a
    /// repetition that did not see the key counts as 0.
    pub fn request_stats(&self, n: usize, scenario: &str, key: &str, per: f64) -> Option<Stats> {
        let reps = self.requests.get(&n)?.get(scenario)?;
        let values: Vec<f64> = reps
            .iter()
            .map(|c| c.get(key).copied().unwrap_or(0.0) / per)
            .collect();
        Stats::of(&values)
    }
}

impl Results {
    /// The limit for fan-out: the fastest of the raw create runs (medians).
    pub fn best_raw_create(&self, n: usize) -> Option<f64> {
        ["raw.create.c1", "raw.create.c8", "raw.create.c32"]
            .iter()
            .filter_map(|key| self.stats(n, key))
            .map(|s| s.median)
            .reduce(f64::min)
    }
}
