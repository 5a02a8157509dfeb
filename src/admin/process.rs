//! Process metrics read from `/proc/self` at each scrape (resident memory, CPU time, threads,
//! open files), and `dgate_build_info`. Where `/proc` is missing the process gauges stay 0.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntGauge, IntGaugeVec, Opts};

pub struct ProcessCollector {
    rss: IntGauge,
    cpu: Gauge,
    threads: IntGauge,
    fds: IntGauge,
    build: IntGaugeVec,
    descs: Vec<Desc>,
}

impl ProcessCollector {
    pub fn new() -> Result<ProcessCollector, prometheus::Error> {
        let rss = IntGauge::new("process_resident_memory_bytes", "Resident memory in bytes")?;
        let cpu = Gauge::new(
            "process_cpu_seconds_total",
            "User and system CPU time spent, in seconds",
        )?;
        let threads = IntGauge::new("process_threads", "Threads of the process")?;
        let fds = IntGauge::new("process_open_fds", "Open file descriptors")?;
        let build = IntGaugeVec::new(
            Opts::new("dgate_build_info", "This dgate's version (always 1)"),
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let descs = [
            rss.desc(),
            cpu.desc(),
            threads.desc(),
            fds.desc(),
            build.desc(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        Ok(ProcessCollector {
            rss,
            cpu,
            threads,
            fds,
            build,
            descs,
        })
    }

    fn refresh(&self) {
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok())
            };
            if let Some(kib) = field("VmRSS:") {
                self.rss.set(kib * 1024);
            }
            if let Some(n) = field("Threads:") {
                self.threads.set(n);
            }
        }
        // utime and stime are fields 14 and 15 of /proc/self/stat, after the parenthesised name.
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
            && let Some((_, rest)) = stat.rsplit_once(')')
        {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
            if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
                self.cpu.set((user + system) / clock_ticks());
            }
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.fds.set(dir.count() as i64);
        }
    }
}

fn clock_ticks() -> f64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf only reads its argument.
        let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if t > 0 {
            return t as f64;
        }
    }
    100.0
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        let mut out = Vec::new();
        out.extend(self.rss.collect());
        out.extend(self.cpu.collect());
        out.extend(self.threads.collect());
        out.extend(self.fds.collect());
        out.extend(self.build.collect());
        out
    }
}
