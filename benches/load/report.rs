//! The results as the markdown tables BENCHMARKS.md is made of.

use std::fmt::Write;

use crate::growth::Growth;
use crate::load::{Lifecycle, Measured};
use crate::pgbench::Limit;
use crate::BenchSettings;

#[derive(Default)]
pub struct Report {
    pub create: Vec<(usize, Limit, Measured)>,
    /// Per create point: how long after the load stopped the last withdrawal reached CoinsPaid.
    pub create_drain: Vec<std::time::Duration>,
    /// Per create point: pgbench writing every row of a create and its acceptance, one
    /// transaction per step (`create_full.sql`).
    pub create_full: Vec<Limit>,
    pub settle: Vec<(usize, Limit, Measured)>,
    /// Per client count: the lifecycle, and pgbench writing every row of a withdrawal's life,
    /// one transaction per step (`lifecycle_full.sql`), with as many clients.
    pub lifecycle: Vec<(usize, Lifecycle, Limit)>,
    pub growth: Vec<Growth>,
    pub peak_rss_kib: u64,
}

fn latencies(m: &Measured) -> String {
    format!(
        "{:.1} | {:.1} | {:.1} | {:.1}",
        m.ms(0.5),
        m.ms(0.9),
        m.ms(0.99),
        m.max_ms()
    )
}

fn against_limit(out: &mut String, title: &str, rows: &[(usize, Limit, Measured)]) {
    let _ = writeln!(out, "### {title}\n");
    let _ = writeln!(
        out,
        "| clients | pgbench limit (tps) | payoutd (req/s) | payoutd / limit | p50 ms | p90 ms | p99 ms | max ms | errors | CPU payoutd / load+sim / PostgreSQL+other |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (clients, limit, measured) in rows {
        let _ = writeln!(
            out,
            "| {clients} | {:.0} | {:.0} | {:.0}% | {} | {} | {:.0}% / {:.0}% / {:.0}% |",
            limit.tps,
            measured.per_sec(),
            100.0 * measured.per_sec() / limit.tps,
            latencies(measured),
            measured.errors,
            measured.cpu.service,
            measured.cpu.bench,
            measured.cpu.other
        );
    }
    let _ = writeln!(out);
}

impl Report {
    pub fn markdown(&self, settings: &BenchSettings) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## Results ({} s per point, {} users, {} payoutd replica(s))\n",
            settings.secs, settings.users, settings.replicas
        );
        against_limit(&mut out, "Create withdrawal", &self.create);
        let _ = writeln!(
            out,
            "Submitted to CoinsPaid: the same withdrawals counted until the last one was accepted \
             (with `worker.first_attempt_wait_ms = 0` a create is answered before it is sent), \
             beside pgbench writing every row of a create and its acceptance one transaction \
             per step (`create_full.sql`).\n"
        );
        let _ = writeln!(
            out,
            "| clients | answered (req/s) | last accepted after the load (s) | submitted (req/s) | submitted / limit | pgbench, every row (tps) | submitted / every row |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
        for (((clients, limit, measured), drain), full) in self
            .create
            .iter()
            .zip(&self.create_drain)
            .zip(&self.create_full)
        {
            let submitted = measured.per_sec_with(*drain);
            let _ = writeln!(
                out,
                "| {clients} | {:.0} | {:.2} | {submitted:.0} | {:.0}% | {:.0} | {:.0}% |",
                measured.per_sec(),
                drain.as_secs_f64(),
                100.0 * submitted / limit.tps,
                full.tps,
                100.0 * submitted / full.tps
            );
        }
        let _ = writeln!(out);
        against_limit(&mut out, "Callback settlement (confirmed)", &self.settle);
        if !self.lifecycle.is_empty() {
            let _ = writeln!(out, "### Full lifecycle\n");
            let _ = writeln!(
                out,
                "| clients | creates/s | settled/s | settled / create limit | pgbench, every row (tps) | settled / every row | create p50/p99 ms | create-to-debit p50 ms | p90 ms | p99 ms | max ms |"
            );
            let _ = writeln!(
                out,
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for (clients, l, full) in &self.lifecycle {
                // Against the create limit measured with as many clients.
                let create_limit = self
                    .create
                    .iter()
                    .find(|(c, _, _)| c == clients)
                    .map_or(f64::NAN, |(_, limit, _)| limit.tps);
                let _ = writeln!(
                    out,
                    "| {clients} | {:.0} | {:.0} | {:.0}% | {:.0} | {:.0}% | {:.1} / {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                    l.create.per_sec(),
                    l.settled_per_sec,
                    100.0 * l.settled_per_sec / create_limit,
                    full.tps,
                    100.0 * l.settled_per_sec / full.tps,
                    l.create.ms(0.5),
                    l.create.ms(0.99),
                    l.p50_ms,
                    l.p90_ms,
                    l.p99_ms,
                    l.max_ms
                );
            }
            let _ = writeln!(out);
        }
        if !self.growth.is_empty() {
            let _ = writeln!(out, "### Cost as data grows (16 clients)\n");
            let _ = writeln!(
                out,
                "| existing withdrawals | request | req/s | p50 ms | p90 ms | p99 ms | max ms |"
            );
            let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|");
            for g in &self.growth {
                for (name, m) in [
                    ("create", &g.create),
                    ("list by user, first page", &g.list_by_user),
                    ("list by user, deep cursor", &g.list_by_user_deep),
                    ("list by status, first page", &g.list_by_status),
                ] {
                    let _ = writeln!(
                        out,
                        "| {} | {name} | {:.0} | {} |",
                        g.rows,
                        m.per_sec(),
                        latencies(m)
                    );
                }
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(
            out,
            "Service peak RSS (VmHWM) over the whole run: {:.1} MiB",
            self.peak_rss_kib as f64 / 1024.0
        );
        out
    }
}
