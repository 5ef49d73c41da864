//! Runs one command: picks the shell, spawns it in its own process group, collects stdout and
//! stderr (lossy UTF-8), streams new output in batches, and on timeout or cancel kills the whole
//! process tree.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use skyshift_proto::agent::{CommandSpec, ShellType, TaskResult, TaskStatus, TaskStatusData};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};

/// Output kept per stream; the server caps at 64 MiB as well, so more is never stored.
pub const MAX_OUTPUT: usize = 64 * 1024 * 1024;

/// After the shell exits, how long its output pipes may stay open (held by a background
/// process it started) before the task is reported without waiting for them.
const PIPE_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// The shortest time between two `task_status` messages of one task.
    pub status_every: Duration,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            status_every: Duration::from_millis(300),
        }
    }
}

/// Stops a task: `stop(reason)` kills its process tree and fails it with `reason`.
#[derive(Debug, Clone)]
pub struct StopHandle(watch::Sender<Option<String>>);

#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<Option<String>>);

pub fn stop_pair() -> (StopHandle, StopSignal) {
    let (tx, rx) = watch::channel(None);
    (StopHandle(tx), StopSignal(rx))
}

impl StopHandle {
    pub fn stop(&self, reason: &str) {
        self.0.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason.to_owned());
                true
            } else {
                false
            }
        });
    }
}

impl StopSignal {
    /// Resolves with the reason once stopped; never resolves if the handle is dropped unused.
    pub async fn stopped(&mut self) -> String {
        let reason = match self.0.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }
}

fn failed(error: impl Into<String>) -> TaskResult {
    TaskResult {
        status: TaskStatus::Failed,
        output: String::new(),
        error: Some(error.into()),
        exit_code: None,
    }
}

/// Finds an executable in `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Some(candidate);
        }
        #[cfg(windows)]
        {
            let exe = dir.join(format!("{name}.exe"));
            if exe.is_file() {
                return Some(exe);
            }
        }
        None
    })
}

/// Quotes one argument for the shell it is appended to.
fn quote(shell: ShellType, arg: &str) -> String {
    match shell {
        ShellType::Bash => format!("'{}'", arg.replace('\'', r"'\''")),
        ShellType::Powershell => format!("'{}'", arg.replace('\'', "''")),
        ShellType::Cmd => format!("\"{}\"", arg.replace('"', "\"\"")),
    }
}

/// The command line a task runs: its `command`, then its `args`, each quoted for the shell.
pub fn script_text(spec: &CommandSpec) -> String {
    let mut text = spec.command.clone();
    for arg in &spec.args {
        text.push(' ');
        text.push_str(&quote(spec.shell_type, arg));
    }
    text
}

/// The program and arguments that run `script` in `shell`, or why it cannot run here.
pub fn shell_invocation(shell: ShellType, script: &str) -> Result<(PathBuf, Vec<String>), String> {
    match shell {
        ShellType::Bash => {
            let program = find_program("bash")
                .or_else(|| find_program("sh"))
                .ok_or("neither bash nor sh is installed (not found in PATH)")?;
            Ok((program, vec!["-c".into(), script.into()]))
        }
        ShellType::Powershell => {
            let program = find_program("pwsh")
                .or_else(|| find_program("powershell"))
                .ok_or("PowerShell is not installed (neither pwsh nor powershell found in PATH)")?;
            Ok((
                program,
                vec![
                    "-NoProfile".into(),
                    "-NonInteractive".into(),
                    "-Command".into(),
                    script.into(),
                ],
            ))
        }
        ShellType::Cmd => cmd_invocation(script),
    }
}

#[cfg(windows)]
fn cmd_invocation(script: &str) -> Result<(PathBuf, Vec<String>), String> {
    Ok((PathBuf::from("cmd"), vec!["/C".into(), script.into()]))
}

#[cfg(not(windows))]
fn cmd_invocation(_script: &str) -> Result<(PathBuf, Vec<String>), String> {
    Err(format!(
        "shell_type cmd needs Windows; this agent runs on {} (use bash)",
        std::env::consts::OS
    ))
}

/// How many leading bytes of `bytes` form complete UTF-8 sequences: a status chunk never ends
/// inside a character that the next chunk completes.
pub fn complete_prefix(bytes: &[u8]) -> usize {
    let len = bytes.len();
    for back in 1..=3.min(len) {
        let byte = bytes[len - back];
        if byte & 0xC0 == 0x80 {
            continue; // a continuation byte: keep looking for the lead
        }
        let needs = match byte {
            b if b & 0xE0 == 0xC0 => 2,
            b if b & 0xF0 == 0xE0 => 3,
            b if b & 0xF8 == 0xF0 => 4,
            _ => 1,
        };
        return if needs > back { len - back } else { len };
    }
    len
}

/// One output stream being collected.
struct Collected {
    bytes: Vec<u8>,
    /// Bytes already sent as `task_status`.
    streamed: usize,
    truncated: bool,
}

impl Collected {
    fn new() -> Self {
        Collected {
            bytes: Vec::new(),
            streamed: 0,
            truncated: false,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        let room = MAX_OUTPUT.saturating_sub(self.bytes.len());
        if chunk.len() > room {
            self.truncated = true;
        }
        self.bytes
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
    }

    /// The new output since the last call, cut at a character boundary.
    fn take_new(&mut self) -> Option<String> {
        let fresh = &self.bytes[self.streamed..];
        let cut = complete_prefix(fresh);
        if cut == 0 {
            return None;
        }
        let text = String::from_utf8_lossy(&fresh[..cut]).into_owned();
        self.streamed += cut;
        Some(text)
    }

    fn into_text(self, what: &str) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.truncated {
            text.push_str(&format!(
                "\n[{what} cut by the agent at {} MiB]",
                MAX_OUTPUT >> 20
            ));
        }
        text
    }
}

enum Ending {
    Exited(std::process::ExitStatus),
    Stopped(String),
    WaitFailed(String),
}

/// Runs `spec` to its end. `progress` receives the new stdout as `task_status` messages at most
/// every `status_every`; `stop` kills the tree at once.
pub async fn run(
    spec: &CommandSpec,
    mut stop: StopSignal,
    progress: Option<mpsc::UnboundedSender<TaskStatusData>>,
    options: &ExecOptions,
) -> TaskResult {
    if let Some(dir) = &spec.working_directory {
        if !Path::new(dir).is_dir() {
            return failed(format!(
                "working directory {dir} does not exist or is not a directory"
            ));
        }
    }
    let script = script_text(spec);
    let (program, argv) = match shell_invocation(spec.shell_type, &script) {
        Ok(invocation) => invocation,
        Err(e) => return failed(e),
    };
    let mut command = Command::new(&program);
    command
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(environment) = &spec.environment {
        command.envs(environment);
    }
    if let Some(dir) = &spec.working_directory {
        command.current_dir(dir);
    }
    // Its own process group, so the whole tree can be killed at once.
    #[cfg(unix)]
    command.process_group(0);
    #[cfg(windows)]
    command.creation_flags(0x0000_0200); // CREATE_NEW_PROCESS_GROUP
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return failed(format!("cannot start {}: {e}", program.display())),
    };
    let pid = child.id();
    let (Some(mut stdout), Some(mut stderr)) = (child.stdout.take(), child.stderr.take()) else {
        kill_tree(&mut child, pid);
        return failed("cannot capture the command's output");
    };

    let send = |output: String| {
        if let Some(progress) = &progress {
            let _ = progress.send(TaskStatusData {
                task_id: spec.task_id,
                status: TaskStatus::Running,
                output,
                error: None,
            });
        }
    };
    send(String::new());

    let timeout = Duration::from_secs(spec.timeout.max(1));
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let grace = tokio::time::sleep(Duration::from_secs(365 * 86_400));
    tokio::pin!(grace);
    let mut tick = tokio::time::interval(options.status_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let (mut out, mut err) = (Collected::new(), Collected::new());
    let (mut out_buf, mut err_buf) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    let (mut out_open, mut err_open) = (true, true);
    let mut exit: Option<Result<std::process::ExitStatus, String>> = None;
    let mut stopped: Option<String> = None;

    loop {
        if exit.is_some() && !out_open && !err_open {
            break;
        }
        tokio::select! {
            read = stdout.read(&mut out_buf), if out_open => match read {
                Ok(0) | Err(_) => out_open = false,
                Ok(n) => out.push(&out_buf[..n]),
            },
            read = stderr.read(&mut err_buf), if err_open => match read {
                Ok(0) | Err(_) => err_open = false,
                Ok(n) => err.push(&err_buf[..n]),
            },
            status = child.wait(), if exit.is_none() => {
                exit = Some(status.map_err(|e| e.to_string()));
                grace.as_mut().reset(tokio::time::Instant::now() + PIPE_GRACE);
            }
            () = &mut deadline, if stopped.is_none() => {
                kill_tree(&mut child, pid);
                stopped = Some(format!("timed out after {} s", timeout.as_secs()));
            }
            reason = stop.stopped(), if stopped.is_none() => {
                kill_tree(&mut child, pid);
                stopped = Some(reason);
            }
            () = &mut grace, if exit.is_some() => {
                if stopped.is_none() {
                    tracing::debug!(task_id = %spec.task_id, "the shell exited; not waiting for output pipes its background processes hold");
                }
                break;
            }
            _ = tick.tick() => {
                if let Some(text) = out.take_new() {
                    send(text);
                }
            }
        }
    }
    if let Some(text) = out.take_new() {
        send(text);
    }

    let ending = match (stopped, exit) {
        (Some(reason), _) => Ending::Stopped(reason),
        (None, Some(Ok(status))) => Ending::Exited(status),
        (None, Some(Err(e))) => Ending::WaitFailed(e),
        (None, None) => Ending::WaitFailed("the command did not end".into()),
    };
    let output = out.into_text("output");
    let stderr_text = err.into_text("error output");
    let with_stderr = |message: String| {
        if stderr_text.is_empty() {
            message
        } else {
            format!("{}\n{message}", stderr_text.trim_end_matches('\n'))
        }
    };
    match ending {
        Ending::Exited(status) => {
            let code = exit_code(&status);
            let error = match (code, signal_of(&status)) {
                (_, Some(signal)) => Some(with_stderr(format!("killed by signal {signal}"))),
                _ if stderr_text.is_empty() => None,
                _ => Some(stderr_text.clone()),
            };
            TaskResult {
                status: if code == Some(0) {
                    TaskStatus::Completed
                } else {
                    TaskStatus::Failed
                },
                output,
                error,
                exit_code: code,
            }
        }
        Ending::Stopped(reason) => TaskResult {
            status: TaskStatus::Failed,
            output,
            error: Some(with_stderr(reason)),
            exit_code: None,
        },
        Ending::WaitFailed(e) => TaskResult {
            status: TaskStatus::Failed,
            output,
            error: Some(with_stderr(format!("cannot wait for the command: {e}"))),
            exit_code: None,
        },
    }
}

fn exit_code(status: &std::process::ExitStatus) -> Option<i64> {
    status.code().map(i64::from)
}

#[cfg(unix)]
fn signal_of(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn signal_of(_status: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// Kills the process group the command leads (every process it started that did not leave it).
#[cfg(unix)]
fn kill_tree(child: &mut Child, pid: Option<u32>) {
    use nix::sys::signal::{killpg, Signal};
    use nix::unistd::Pid;
    if let Some(pid) = pid.and_then(|pid| i32::try_from(pid).ok()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.start_kill();
}

/// Kills the process and its descendants (`taskkill /T`).
#[cfg(windows)]
fn kill_tree(child: &mut Child, pid: Option<u32>) {
    if let Some(pid) = pid {
        let _ = std::process::Command::new("taskkill")
            .args(["/T", "/F", "/PID", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.start_kill();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_chunks_end_on_character_boundaries() {
        let text = "aé€😀".as_bytes();
        assert_eq!(complete_prefix(text), text.len());
        for cut in 0..text.len() {
            let prefix = complete_prefix(&text[..cut]);
            assert!(std::str::from_utf8(&text[..prefix]).is_ok(), "cut {cut}");
            assert!(cut - prefix <= 3);
        }
        // Invalid bytes are not held back forever.
        assert_eq!(complete_prefix(&[0xff, 0xfe]), 2);
    }

    #[test]
    fn args_are_quoted_for_their_shell() {
        let spec = CommandSpec {
            task_id: uuid::Uuid::nil(),
            command: "printf '%s|'".into(),
            args: vec!["a b".into(), "it's".into()],
            shell_type: ShellType::Bash,
            timeout: 5,
            working_directory: None,
            environment: None,
        };
        assert_eq!(script_text(&spec), r"printf '%s|' 'a b' 'it'\''s'");
        assert_eq!(quote(ShellType::Powershell, "it's"), "'it''s'");
        assert_eq!(quote(ShellType::Cmd, "say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[cfg(not(windows))]
    #[test]
    fn cmd_is_refused_off_windows() {
        let err = shell_invocation(ShellType::Cmd, "dir").unwrap_err();
        assert!(err.contains("needs Windows"), "{err}");
    }
}
