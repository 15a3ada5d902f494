//! Memory and CPU of processes, from `/proc` (other processes) and
//! `getrusage` (the load generator itself).

use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};
use nix::unistd::{SysconfVar, sysconf};

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcSample {
    /// utime + stime, in seconds.
    pub cpu_secs: f64,
    /// `VmHWM`: peak resident set size, bytes.
    pub peak_rss_bytes: u64,
    /// `VmRSS`: current resident set size, bytes.
    pub rss_bytes: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` if the process
/// is gone or unreadable.
pub fn sample(pid: i32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let ticks = parse_stat_cpu_ticks(&stat)?;
    Some(ProcSample {
        cpu_secs: ticks as f64 / clock_ticks_per_sec(),
        peak_rss_bytes: status_kib(&status, "VmHWM").unwrap_or(0) * 1024,
        rss_bytes: status_kib(&status, "VmRSS").unwrap_or(0) * 1024,
    })
}

/// `sysconf(_SC_CLK_TCK)`, the unit of `utime`/`stime` (100 on Linux when
/// unknown).
pub fn clock_ticks_per_sec() -> f64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in ticks.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name is in parentheses and may contain spaces: fields are
    // counted from after the last ')'. Field 3 (state) is the first there.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// A `Key:   123 kB` line of `/proc/<pid>/status`, in KiB.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// CPU time and peak RSS of the load generator itself.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SelfSample {
    /// User + system CPU, seconds.
    pub cpu_secs: f64,
    /// `ru_maxrss`, bytes.
    pub peak_rss_bytes: u64,
}

/// `getrusage(RUSAGE_SELF)`.
pub fn self_sample() -> SelfSample {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::new(
                    u64::try_from(t.tv_sec()).unwrap_or(0),
                    u32::try_from(t.tv_usec()).unwrap_or(0) * 1000,
                )
            };
            SelfSample {
                cpu_secs: (tv(u.user_time()) + tv(u.system_time())).as_secs_f64(),
                peak_rss_bytes: u64::try_from(u.max_rss()).unwrap_or(0) * 1024,
            }
        }
        Err(_) => SelfSample::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_with_spaces_in_comm() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
        // majflt cmajflt utime stime ...
        let line = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0";
        assert_eq!(parse_stat_cpu_ticks(line), Some(300));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn status_lines() {
        let status = "Name:\tacme-frontend\nVmPeak:\t  200000 kB\nVmHWM:\t   12345 kB\nVmRSS:\t    6789 kB\n";
        assert_eq!(status_kib(status, "VmHWM"), Some(12345));
        assert_eq!(status_kib(status, "VmRSS"), Some(6789));
        assert_eq!(status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn samples_ourselves() {
        let me = i32::try_from(std::process::id()).expect("pid");
        let s = sample(me).expect("own /proc entry");
        assert!(s.peak_rss_bytes >= s.rss_bytes && s.rss_bytes > 0);
        assert!(self_sample().peak_rss_bytes > 0);
        assert!(clock_ticks_per_sec() > 0.0);
    }
}
