//! Finding the processes a test started: each test's commands carry `SKYSHIFT_TEST_MARK=<unique>`
//! in their environment, so leftovers (a process tree not killed) can be found in `/proc`.
//! Shared by the executor and end-to-end test binaries.

/// The environment variable that marks a test's processes.
pub const MARK: &str = "SKYSHIFT_TEST_MARK";

/// Live processes whose environment holds `SKYSHIFT_TEST_MARK=mark` (zombies excluded).
pub fn processes_with(mark: &str) -> Vec<u32> {
    let needle = format!("{MARK}={mark}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .map(|stat| {
                stat.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        if !zombie
            && environ
                .split(|b| *b == 0)
                .any(|var| var == needle.as_bytes())
        {
            found.push(pid);
        }
    }
    found
}
