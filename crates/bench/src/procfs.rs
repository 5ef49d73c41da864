//! What the bench reads from `/proc`: resident memory (`VmRSS`), CPU time (`stat`), the open-file
//! limit of another process (`limits`), and ffmpeg's `-benchmark` line; plus raising our own
//! `RLIMIT_NOFILE`.

use anyhow::Context;

/// Clock ticks per second of `/proc/*/stat` times. Linux reports USER_HZ, 100 on every
/// architecture the project builds for.
pub const TICKS_PER_SECOND: f64 = 100.0;

/// `VmRSS` of a `/proc/PID/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => Some(value * 1024),
        _ => None,
    }
}

/// Resident memory of process `pid` now, in bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status (is {pid} running?)"))?;
    parse_vm_rss(&status).with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// utime + stime, in clock ticks, of a `/proc/PID/stat` (or `/proc/thread-self/stat`) text.
/// The command name (field 2) may hold spaces and parentheses, so fields are counted from the
/// last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds process `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    stat_seconds(&format!("/proc/{pid}/stat"))
}

/// CPU seconds the calling thread has used so far.
pub fn thread_cpu_seconds() -> anyhow::Result<f64> {
    stat_seconds("/proc/thread-self/stat")
}

fn stat_seconds(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    let ticks = parse_stat_cpu_ticks(&stat).with_context(|| format!("cannot parse {path}"))?;
    Ok(ticks as f64 / TICKS_PER_SECOND)
}

/// The soft and hard "Max open files" of a `/proc/PID/limits` text (`None` = unlimited).
pub fn parse_open_files_limit(limits: &str) -> Option<(Option<u64>, Option<u64>)> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let mut words = line["Max open files".len()..].split_whitespace();
    let value = |word: Option<&str>| -> Option<Option<u64>> {
        match word? {
            "unlimited" => Some(None),
            number => number.parse().ok().map(Some),
        }
    };
    Some((value(words.next())?, value(words.next())?))
}

/// The soft open-file limit of process `pid`, when it can be read (`None` inside = unlimited).
pub fn open_files_limit(pid: u32) -> Option<Option<u64>> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    parse_open_files_limit(&limits).map(|(soft, _)| soft)
}

/// What raising our own open-file limit gave.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NofileLimit {
    pub wanted: u64,
    pub soft: u64,
    pub hard: u64,
    /// Set when the limit is below what the run needs, in words for the user.
    pub warning: Option<String>,
}

/// Raises `RLIMIT_NOFILE` to at least `wanted`: the soft limit up to the hard one, and the hard
/// one too when we may (root, or CAP_SYS_RESOURCE). Says so when that is not enough.
pub fn raise_nofile(wanted: u64) -> anyhow::Result<NofileLimit> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= wanted {
        return Ok(NofileLimit {
            wanted,
            soft,
            hard,
            warning: None,
        });
    }
    if hard < wanted && setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted).is_ok() {
        return Ok(NofileLimit {
            wanted,
            soft: wanted,
            hard: wanted,
            warning: None,
        });
    }
    let soft = wanted.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard)?;
    let warning = (soft < wanted).then(|| {
        format!(
            "the open-file hard limit is {hard} but this run needs about {wanted}: connections past \
             the limit will fail. Raise it (as root: `ulimit -Hn {wanted}`, or `nofile` in \
             /etc/security/limits.conf) or lower --count"
        )
    });
    Ok(NofileLimit {
        wanted,
        soft,
        hard,
        warning,
    })
}

/// ffmpeg's `-benchmark` summary: `bench: utime=1.234s stime=0.056s rtime=10.0s`, as CPU
/// seconds (user + system).
pub fn parse_ffmpeg_bench(stderr: &str) -> Option<f64> {
    let line = stderr
        .lines()
        .rev()
        .find(|line| line.starts_with("bench:") && line.contains("utime="))?;
    let field = |name: &str| -> Option<f64> {
        let word = line.split_whitespace().find(|w| w.starts_with(name))?;
        word[name.len()..].trim_end_matches('s').parse().ok()
    };
    Some(field("utime=")? + field("stime=")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_in_bytes() {
        let status =
            "Name:\tskyshift-server\nVmPeak:\t  200000 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(parse_vm_rss("Name:\tkthreadd\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn cpu_ticks_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 30 0 0 20 0 \
                    8 0 100 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(280));
        assert_eq!(parse_stat_cpu_ticks("1 (init) S 0"), None);
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn own_process_and_thread_figures_are_readable() {
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
        assert!(cpu_seconds(std::process::id()).unwrap() >= 0.0);
        assert!(thread_cpu_seconds().unwrap() >= 0.0);
    }

    #[test]
    fn open_files_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(
            parse_open_files_limit(limits),
            Some((Some(1024), Some(524288)))
        );
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files_limit(unlimited), Some((None, None)));
        assert_eq!(parse_open_files_limit("Max processes 5 5\n"), None);
    }

    #[test]
    fn ffmpeg_benchmark_line() {
        let stderr = "frame=  300 fps= 30 q=5.0 Lsize=...\nbench: maxrss=81232KiB\n\
                      bench: utime=2.512s stime=0.250s rtime=10.043s\n";
        let cpu = parse_ffmpeg_bench(stderr).unwrap();
        assert!((cpu - 2.762).abs() < 1e-9);
        assert_eq!(parse_ffmpeg_bench("no benchmark here"), None);
    }
}
