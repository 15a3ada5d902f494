//! `--heap-stats`: the heap requests of the started CA's processes, read
//! from the frontend's `/metrics` (the daemons count when started with
//! `AKAMU_HEAP_STATS=1`, see `daemon_kit::heap`).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Bytes requested and allocation calls of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    /// Bytes requested, including those freed again.
    pub allocated_bytes: f64,
    /// Allocation calls.
    pub allocations: f64,
}

/// The bench's name of a process from its `process` label.
fn bench_name(label: &str) -> Option<&'static str> {
    match label {
        "frontend" => Some("acme-frontend"),
        "signer" => Some("ca-signer"),
        "validator" => Some("validator-worker"),
        _ => None,
    }
}

/// Reads the heap counters of every process from `url` (Prometheus text).
pub async fn scrape(url: &str) -> Result<BTreeMap<&'static str, Counters>> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = url.parse().with_context(|| format!("metrics URL {url}"))?;
    let response = tokio::time::timeout(Duration::from_secs(10), async {
        let response = client.get(uri).await?;
        let body = Limited::new(response.into_body(), 4 << 20)
            .collect()
            .await
            .map_err(|e| anyhow!("read {url}: {e}"))?;
        Ok::<_, anyhow::Error>(body.to_bytes())
    })
    .await
    .map_err(|_| anyhow!("no answer from {url} within 10 s"))??;
    Ok(parse(&String::from_utf8_lossy(&response)))
}

/// The heap counters in a Prometheus text exposition.
pub fn parse(text: &str) -> BTreeMap<&'static str, Counters> {
    let mut out: BTreeMap<&'static str, Counters> = BTreeMap::new();
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let Some((metric, labels)) = series.split_once('{') else {
            continue;
        };
        let Some(name) = labels
            .strip_prefix("process=\"")
            .and_then(|l| l.split_once('"'))
            .and_then(|(label, _)| bench_name(label))
        else {
            continue;
        };
        match metric {
            "akamu_process_heap_allocated_bytes_total" => {
                out.entry(name).or_default().allocated_bytes = value;
            }
            "akamu_process_heap_allocations_total" => {
                out.entry(name).or_default().allocations = value;
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_counters_by_process() {
        let text = "# HELP akamu_process_heap_allocated_bytes Bytes.\n\
            # TYPE akamu_process_heap_allocated_bytes counter\n\
            akamu_process_heap_allocated_bytes_total{process=\"frontend\"} 1000\n\
            akamu_process_heap_allocated_bytes_total{process=\"signer\"} 200\n\
            akamu_process_heap_allocations_total{process=\"frontend\"} 7\n\
            akamu_process_cpu_seconds_total{process=\"frontend\"} 3.5\n\
            akamu_process_heap_allocations_total{process=\"other\"} 9\n";
        let c = parse(text);
        assert_eq!(
            c.get("acme-frontend"),
            Some(&Counters {
                allocated_bytes: 1000.0,
                allocations: 7.0
            })
        );
        assert_eq!(c.get("ca-signer").map(|c| c.allocated_bytes), Some(200.0));
        assert_eq!(c.len(), 2);
    }
}
