//! The executor with real processes: output, exit codes, stderr, timeouts and cancellation that
//! kill the whole process tree (checked in /proc), working directory, environment, 10 MB of
//! output, non-UTF-8 bytes, partial output in batches.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use skyshift_agent::executor::{self, stop_pair, ExecOptions};
use skyshift_proto::agent::{CommandSpec, ShellType, TaskResult, TaskStatus, TaskStatusData};
use tokio::sync::mpsc;
use uuid::Uuid;

// Each test's processes carry `MARK` with a fresh value, so /proc tells which are its.
#[path = "support/processes.rs"]
mod processes;

use processes::{processes_with, MARK};

fn spec(command: &str) -> CommandSpec {
    CommandSpec {
        task_id: Uuid::new_v4(),
        command: command.into(),
        args: vec![],
        shell_type: ShellType::Bash,
        timeout: 30,
        working_directory: None,
        environment: None,
    }
}

fn marked(command: &str) -> (CommandSpec, String) {
    let mark = Uuid::new_v4().to_string();
    let mut spec = spec(command);
    spec.environment = Some(BTreeMap::from([(MARK.to_owned(), mark.clone())]));
    (spec, mark)
}

async fn run(spec: &CommandSpec) -> TaskResult {
    let (_handle, signal) = stop_pair();
    executor::run(spec, signal, None, &ExecOptions::default()).await
}

/// Waits (bounded) until no process carries `mark`; SIGKILL is delivered asynchronously.
async fn assert_none_left(mark: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = processes_with(mark);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left behind: {left:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn echo_completes_with_its_output() {
    let result = run(&spec("echo hello")).await;
    assert_eq!(result.status, TaskStatus::Completed);
    assert_eq!(result.output, "hello\n");
    assert_eq!(result.exit_code, Some(0));
    assert_eq!(result.error, None);
}

#[tokio::test]
async fn a_non_zero_exit_fails_with_stderr() {
    let result = run(&spec("echo out; echo oops >&2; exit 3")).await;
    assert_eq!(result.status, TaskStatus::Failed);
    assert_eq!(result.output, "out\n");
    assert_eq!(result.error.as_deref(), Some("oops\n"));
    assert_eq!(result.exit_code, Some(3));
}

#[tokio::test]
async fn a_timeout_kills_the_whole_tree() {
    let (mut spec, mark) = marked("echo started; sleep 100 & sleep 100");
    spec.timeout = 1;
    let started = Instant::now();
    let (_handle, signal) = stop_pair();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        executor::run(&spec, signal, Some(tx), &ExecOptions::default()).await
    });
    // Both sleeps exist while it runs: the check below can fail.
    wait_for_output(&mut rx, "started").await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while processes_with(&mark).len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the shell and both sleeps never showed up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let result = task.await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(result.status, TaskStatus::Failed);
    assert!(
        result
            .error
            .as_deref()
            .unwrap()
            .contains("timed out after 1 s"),
        "{:?}",
        result.error
    );
    assert_eq!(
        result.output, "started\n",
        "output before the timeout is kept"
    );
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert_none_left(&mark).await;
}

async fn wait_for_output(rx: &mut mpsc::UnboundedReceiver<TaskStatusData>, text: &str) {
    let mut seen = String::new();
    while !seen.contains(text) {
        let status = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("no status in time")
            .expect("status channel closed");
        assert_eq!(status.status, TaskStatus::Running);
        seen.push_str(&status.output);
    }
}

#[tokio::test]
async fn cancel_ends_sleep_100_within_a_second_leaving_nothing() {
    let (spec, mark) = marked("echo ready; sleep 100 & sleep 100");
    let (handle, signal) = stop_pair();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        executor::run(&spec, signal, Some(tx), &ExecOptions::default()).await
    });
    wait_for_output(&mut rx, "ready").await;
    let cancelled_at = Instant::now();
    handle.stop("cancelled");
    let result = tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("a cancelled task ends within a second")
        .unwrap();
    assert!(cancelled_at.elapsed() < Duration::from_secs(1));
    assert_eq!(result.status, TaskStatus::Failed);
    assert!(result.error.as_deref().unwrap().contains("cancelled"));
    assert_none_left(&mark).await;
}

#[tokio::test]
async fn working_directory_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec("pwd; echo \"$GREETING|$SHELL_VAR_FROM_AGENT|${HOME:+home-inherited}\"");
    spec.working_directory = Some(dir.path().to_str().unwrap().into());
    spec.environment = Some(BTreeMap::from([
        ("GREETING".to_owned(), "hello world".to_owned()),
        ("SHELL_VAR_FROM_AGENT".to_owned(), "x=1".to_owned()),
    ]));
    let result = run(&spec).await;
    assert_eq!(result.status, TaskStatus::Completed, "{:?}", result.error);
    let canonical = dir.path().canonicalize().unwrap();
    assert_eq!(
        result.output,
        format!("{}\nhello world|x=1|home-inherited\n", canonical.display())
    );

    let mut missing = spec.clone();
    missing.working_directory = Some("/no/such/dir/anywhere".into());
    let result = run(&missing).await;
    assert_eq!(result.status, TaskStatus::Failed);
    let error = result.error.unwrap();
    assert!(
        error.contains("/no/such/dir/anywhere") && error.contains("does not exist"),
        "{error}"
    );
}

#[tokio::test]
async fn ten_megabytes_of_output_arrive_intact_and_stream_in_batches() {
    const SIZE: usize = 10 * 1024 * 1024;
    let line = "0123456789abcdefghijklmnopqrstuvwxyz\n";
    let spec = spec(&format!(
        "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c {SIZE}"
    ));
    let (_handle, signal) = stop_pair();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    let result = executor::run(&spec, signal, Some(tx), &ExecOptions::default()).await;
    let elapsed = started.elapsed();
    assert_eq!(result.status, TaskStatus::Completed);
    assert_eq!(result.output.len(), SIZE);
    let expected: String = line.repeat(SIZE / line.len() + 1)[..SIZE].to_owned();
    assert!(
        result.output == expected,
        "the output differs from what was printed"
    );
    let mut streamed = String::new();
    let mut messages = 0;
    while let Ok(status) = rx.try_recv() {
        streamed.push_str(&status.output);
        messages += 1;
    }
    assert!(
        streamed == result.output,
        "streamed chunks add up to the output"
    );
    // One opening status, one per 300 ms at most, one final flush.
    let allowed = 2 + (elapsed.as_millis() / 300) as usize + 1;
    assert!(messages <= allowed, "{messages} statuses in {elapsed:?}");
}

#[tokio::test]
async fn partial_output_is_streamed_while_it_runs() {
    let spec = spec("for i in 1 2 3 4 5 6 7 8; do echo line$i; sleep 0.1; done");
    let (_handle, signal) = stop_pair();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        executor::run(&spec, signal, Some(tx), &ExecOptions::default()).await
    });
    // line1 arrives long before the command ends.
    wait_for_output(&mut rx, "line1").await;
    assert!(!task.is_finished());
    let result = task.await.unwrap();
    assert_eq!(result.output.lines().count(), 8);
    let mut rest = 0;
    while rx.try_recv().is_ok() {
        rest += 1;
    }
    assert!(
        rest <= 5,
        "{rest} more statuses for under a second of output"
    );
}

#[tokio::test]
async fn non_utf8_output_is_kept_lossily() {
    let result = run(&spec(r"printf 'a\377\376b\n'; printf '\351t\351\n' >&2")).await;
    assert_eq!(result.status, TaskStatus::Completed);
    assert_eq!(result.output, "a\u{FFFD}\u{FFFD}b\n");
    assert_eq!(result.error.as_deref(), Some("\u{FFFD}t\u{FFFD}\n"));
}

#[tokio::test]
async fn args_reach_the_command_quoted() {
    let mut spec = spec("printf '%s|'");
    spec.args = vec!["a b".into(), "it's".into(), "$HOME".into()];
    let result = run(&spec).await;
    assert_eq!(result.output, "a b|it's|$HOME|");
}

#[tokio::test]
async fn a_command_killed_by_a_signal_says_so() {
    let result = run(&spec("echo before; kill -9 $$")).await;
    assert_eq!(result.status, TaskStatus::Failed);
    assert!(result.error.unwrap().contains("killed by signal 9"));
}

#[tokio::test]
async fn a_background_process_holding_the_pipes_does_not_hang_the_task() {
    let (spec, mark) = marked("echo hi; sleep 100 &");
    let started = Instant::now();
    let result = run(&spec).await;
    assert_eq!(result.status, TaskStatus::Completed);
    assert_eq!(result.output, "hi\n");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Cleanup: the test's own leftover.
    for pid in processes_with(&mark) {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
}

#[tokio::test]
async fn unavailable_shells_fail_clearly() {
    let mut cmd = spec("dir");
    cmd.shell_type = ShellType::Cmd;
    let result = run(&cmd).await;
    assert_eq!(result.status, TaskStatus::Failed);
    assert!(result.error.unwrap().contains("needs Windows"));

    if executor::find_program("pwsh").is_none() && executor::find_program("powershell").is_none() {
        let mut ps = spec("Get-Date");
        ps.shell_type = ShellType::Powershell;
        let result = run(&ps).await;
        assert!(result
            .error
            .unwrap()
            .contains("PowerShell is not installed"));
    }
}
