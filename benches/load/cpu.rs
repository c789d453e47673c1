//! Where the two cores went during a load point: the service, this process (load generator
//! and simulator), and everything else (PostgreSQL, mostly), from /proc.

/// CPU time so far, in clock ticks.
#[derive(Clone, Copy)]
pub struct CpuSample {
    all_busy: u64,
    service: u64,
    bench: u64,
}

/// Shares of the machine's busy time between two samples, in percent of all cores.
pub struct CpuSplit {
    pub service: f64,
    pub bench: f64,
    pub other: f64,
}

fn process_ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name may hold spaces; the fields after it are plain.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

fn machine() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    let all: u64 = ticks.iter().take(8).sum();
    (all, all - idle)
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
}

impl CpuSample {
    pub fn now(service_pids: &[u32]) -> Self {
        Self {
            all_busy: machine().1,
            service: service_pids
                .iter()
                .map(|pid| process_ticks(&pid.to_string()))
                .sum(),
            bench: process_ticks("self"),
        }
    }

    /// Shares of `elapsed_ticks` wall-clock ticks on every core.
    pub fn split_since(&self, earlier: &CpuSample, elapsed_secs: f64) -> CpuSplit {
        // /proc counts in USER_HZ, 100 on Linux.
        let capacity = elapsed_secs * 100.0 * cores();
        let pct = |ticks: u64| 100.0 * ticks as f64 / capacity.max(1.0);
        let service = self.service.saturating_sub(earlier.service);
        let bench = self.bench.saturating_sub(earlier.bench);
        let busy = self.all_busy.saturating_sub(earlier.all_busy);
        CpuSplit {
            service: pct(service),
            bench: pct(bench),
            other: pct(busy.saturating_sub(service + bench)),
        }
    }
}
