//! Machine figures for heartbeats (capability `system_monitoring`): OS, uptime, CPU %, memory
//! and disk use, read with sysinfo. CPU use is measured between two samples, so the monitor is
//! kept and sampled once per heartbeat.

use skyshift_proto::agent::SystemInfo;
use sysinfo::{Disks, System};

pub struct Monitor {
    system: System,
    disks: Disks,
}

impl Default for Monitor {
    fn default() -> Self {
        Self::new()
    }
}

impl Monitor {
    pub fn new() -> Self {
        let mut system = System::new();
        system.refresh_cpu_usage();
        Monitor {
            system,
            disks: Disks::new_with_refreshed_list(),
        }
    }

    pub fn sample(&mut self) -> SystemInfo {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.disks.refresh(true);
        let (mut disk_total, mut disk_free) = (0u64, 0u64);
        let mut seen_devices = std::collections::HashSet::new();
        for disk in self.disks.list() {
            // The same device mounted twice (bind mounts) is counted once.
            if seen_devices.insert(disk.name().to_owned()) {
                disk_total += disk.total_space();
                disk_free += disk.available_space();
            }
        }
        SystemInfo {
            os: System::long_os_version().or_else(System::name),
            uptime_secs: Some(System::uptime()),
            cpu_percent: Some(self.system.global_cpu_usage()),
            memory_used_bytes: Some(self.system.used_memory()),
            memory_total_bytes: Some(self.system.total_memory()),
            disk_used_bytes: (disk_total > 0).then(|| disk_total.saturating_sub(disk_free)),
            disk_total_bytes: (disk_total > 0).then_some(disk_total),
        }
    }
}

/// This machine's name, for registration when `id.ini` says `AUTO_DETECT`.
pub fn host_name() -> String {
    System::host_name()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_has_every_figure_that_makes_sense() {
        let mut monitor = Monitor::new();
        let info = monitor.sample();
        assert!(info.os.is_some());
        assert!(info.uptime_secs.unwrap() > 0);
        let cpu = info.cpu_percent.unwrap();
        assert!((0.0..=100.0).contains(&cpu), "{cpu}");
        assert!(info.memory_total_bytes.unwrap() > 0);
        assert!(info.memory_used_bytes.unwrap() <= info.memory_total_bytes.unwrap());
        if let (Some(used), Some(total)) = (info.disk_used_bytes, info.disk_total_bytes) {
            assert!(used <= total);
        }
        assert!(!host_name().is_empty());
    }
}
