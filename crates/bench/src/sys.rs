//! CPU time and peak memory of this process and of the server under test, read from Linux's /proc.

/// CPU seconds (user + system) this process has used, all threads.
pub fn own_cpu_seconds() -> f64 {
    process_cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// Peak resident memory of this process, in KiB.
pub fn own_peak_rss_kib() -> Option<u64> {
    proc_status_kib("self", "VmHWM:")
}

/// CPU seconds (user + system) process `pid` has used, from /proc/<pid>/stat.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; the fields after its closing parenthesis are plain.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at offsets 11 and 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// Peak resident memory of process `pid`, in KiB.
pub fn process_peak_rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(&pid.to_string(), "VmHWM:")
}

fn proc_status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The unit of the times in /proc/<pid>/stat: USER_HZ, which Linux fixes at 100 for user space.
fn clock_ticks() -> f64 {
    100.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_measured() {
        let pid = std::process::id();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        assert!(own_cpu_seconds() > 0.0);
        assert!(process_cpu_seconds(pid).is_some());
        assert!(process_peak_rss_kib(pid).unwrap_or(0) > 0);
        assert!(own_peak_rss_kib().unwrap_or(0) > 0);
        assert!(process_cpu_seconds(u32::MAX).is_none());
    }
}
