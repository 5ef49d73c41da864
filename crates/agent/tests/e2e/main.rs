//! End to end: the real server (in-process, behind a cuttable proxy) and the real
//! `skyshift-agent` binary. Each test is one of issue 5's required behaviours.

mod harness;
#[path = "../support/processes.rs"]
mod processes;
mod proxy;
mod tls;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use harness::{assert_none_left, processes_with, wait_processes, AgentProcess, Server};

/// Starts an agent in `dir` and waits until its WebSocket is up; returns it and its id.
async fn connected(
    server: &Server,
    dir: &std::path::Path,
    extra: &[&str],
) -> (AgentProcess, String) {
    let agent = AgentProcess::start(server, dir, extra);
    let listed = server
        .wait_agent("connected over its WebSocket", |a| {
            a["websocket_connected"] == true
        })
        .await;
    (agent, listed["agent_id"].as_str().unwrap().to_owned())
}

/// Waits until the file exists with at least `lines` lines (written by a command on the agent).
async fn wait_file_lines(path: &std::path::Path, lines: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(path).map_or(0, |text| text.lines().count()) < lines {
        assert!(
            Instant::now() < deadline,
            "{} never had {lines} lines",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn bash(command: &str) -> Value {
    json!({"command": command, "shell_type": "bash", "timeout": 30})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_and_its_output() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, agent_id) = connected(&server, dir.path(), &[]).await;
    let task = server
        .run(&agent_id, bash("echo hello from the agent"))
        .await;
    assert_eq!(task["status"], "completed", "{task}\n{}", agent.log());
    assert_eq!(task["output"], "hello from the agent\n");
    assert_eq!(task["exit_code"], 0);
    // Registered with what id.ini says, and reports the machine with its heartbeats.
    let listed = server
        .wait_agent("with system_info", |a| !a["system_info"].is_null())
        .await;
    assert_eq!(listed["customer_uuid"], server.customer_uuid.as_str());
    assert!(
        listed["system_info"]["memory_total_bytes"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(listed["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("system_monitoring")));
    // The state file beside id.ini is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("id.agent.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Neither the API key nor the agent token reaches a log line (debug level here).
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("id.agent.json")).unwrap()).unwrap();
    let token = state["agent_token"].as_str().unwrap();
    let api_key = server
        .id_ini
        .lines()
        .find_map(|line| line.strip_prefix("api_key = "))
        .unwrap();
    let log = agent.log();
    assert!(log.contains("registered"), "{log}");
    assert!(!log.contains(token) && !log.contains(api_key), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_zero_exit_code_with_stderr() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (_agent, agent_id) = connected(&server, dir.path(), &[]).await;
    let task = server
        .run(
            &agent_id,
            bash("echo partial; echo something broke >&2; exit 7"),
        )
        .await;
    assert_eq!(task["status"], "failed");
    assert_eq!(task["exit_code"], 7);
    assert_eq!(task["output"], "partial\n");
    assert_eq!(task["error"], "something broke\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_children_too() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (_agent, agent_id) = connected(&server, dir.path(), &[]).await;
    let mark = uuid::Uuid::new_v4().to_string();
    let started = Instant::now();
    let task_id = server
        .command(
            &agent_id,
            json!({"command": "sleep 100 & sleep 100", "shell_type": "bash", "timeout": 2,
                   "environment": {"SKYSHIFT_TEST_MARK": mark}}),
        )
        .await;
    // The shell and both sleeps run: the check below can fail.
    wait_processes(&mark, 3).await;
    let task = server.finished(&agent_id, &task_id).await;
    assert_eq!(task["status"], "failed");
    assert!(
        task["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 2 s"),
        "{task}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_none_left(&mark, Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn working_directory_and_environment() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (_agent, agent_id) = connected(&server, dir.path(), &[]).await;
    let work = tempfile::tempdir().unwrap();
    let task = server
        .run(
            &agent_id,
            json!({"command": "pwd; echo \"$GREETING / $SECOND\"", "shell_type": "bash",
                   "working_directory": work.path(),
                   "environment": {"GREETING": "hello there", "SECOND": "two words"}}),
        )
        .await;
    assert_eq!(task["status"], "completed", "{task}");
    let expected = format!(
        "{}\nhello there / two words\n",
        work.path().canonicalize().unwrap().display()
    );
    assert_eq!(task["output"], expected.as_str());

    let task = server
        .run(
            &agent_id,
            json!({"command": "pwd", "shell_type": "bash", "working_directory": "/no/such/place"}),
        )
        .await;
    assert_eq!(task["status"], "failed");
    assert!(
        task["error"].as_str().unwrap().contains("/no/such/place"),
        "{task}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_megabytes_of_output_intact() {
    const SIZE: usize = 10 * 1024 * 1024;
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, agent_id) = connected(&server, dir.path(), &[]).await;
    let line = "0123456789abcdefghijklmnopqrstuvwxyz\n";
    let started = Instant::now();
    let task = server
        .run(
            &agent_id,
            bash(&format!("yes {} | head -c {SIZE}", line.trim_end())),
        )
        .await;
    eprintln!(
        "10 MiB of output: result stored after {:?}",
        started.elapsed()
    );
    assert_eq!(task["status"], "completed", "{}", agent.log());
    let output = task["output"].as_str().unwrap();
    assert_eq!(output.len(), SIZE);
    assert!(
        output == &line.repeat(SIZE / line.len() + 1)[..SIZE],
        "output differs"
    );
    assert_eq!(task["output_truncated"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_with_parameters() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (_agent, agent_id) = connected(&server, dir.path(), &[]).await;
    let script = server
        .expect(
            Method::POST,
            "/api/scripts",
            Some(json!({"name": "greet", "script_type": "bash",
                        "content": "echo \"Hello, $NAME from $CITY\"\nexit 0"})),
        )
        .await;
    let path = format!(
        "/api/scripts/{}/execute",
        script["script_id"].as_str().unwrap()
    );
    let accepted = server
        .expect(
            Method::POST,
            &path,
            Some(json!({"agent_id": agent_id,
                        "parameters": {"NAME": "Ada; echo injected", "CITY": "Zürich"}})),
        )
        .await;
    let task = server
        .finished(&agent_id, accepted["task_id"].as_str().unwrap())
        .await;
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["output"], "Hello, Ada; echo injected from Zürich\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_queued_while_the_agent_was_down_runs_after_it_starts() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, agent_id) = connected(&server, dir.path(), &[]).await;
    assert!(agent.stop().await.success());
    server
        .wait_agent("disconnected", |a| a["websocket_connected"] == false)
        .await;
    let task_id = server.command(&agent_id, bash("echo I waited")).await;
    assert_eq!(server.task(&agent_id, &task_id).await["status"], "pending");

    let agent = AgentProcess::start(&server, dir.path(), &[]);
    let task = server.finished(&agent_id, &task_id).await;
    assert_eq!(task["status"], "completed", "{}", agent.log());
    assert_eq!(task["output"], "I waited\n");
    // Still the same agent: it did not register again.
    let agents = server.agents().await;
    assert_eq!(agents.len(), 1, "{agents:?}");
    assert_eq!(agents[0]["agent_id"], agent_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_restarted_mid_task_gets_the_result_afterwards_once() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, agent_id) = connected(&server, dir.path(), &[]).await;
    let runs = dir.path().join("runs");
    let gate = dir.path().join("gate");
    let command = format!(
        "echo run >> {runs}; while [ ! -e {gate} ]; do sleep 0.05; done; echo done",
        runs = runs.display(),
        gate = gate.display()
    );
    let task_id = server.command(&agent_id, bash(&command)).await;
    wait_file_lines(&runs, 1).await;

    // The server goes away while the task runs; the task ends while it is away, so its
    // result waits in the outbox; then the server comes back as a new process would.
    server.stop().await;
    std::fs::write(&gate, "").unwrap();
    let outbox = dir.path().join("id.outbox");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&outbox).unwrap().count() == 0 {
        assert!(
            Instant::now() < deadline,
            "the result never reached the outbox"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.start_again().await;
    let task = server.finished(&agent_id, &task_id).await;
    assert_eq!(task["status"], "completed", "{task}\n{}", agent.log());
    assert_eq!(task["output"], "done\n");
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "run\n", "ran once");
    // The outbox empties: the result was acknowledged.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&outbox).unwrap().count() > 0 {
        assert!(Instant::now() < deadline, "outbox never emptied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Reconnected, and the task is not run again when the server re-sends what it has.
    server
        .wait_agent("reconnected", |a| a["websocket_connected"] == true)
        .await;
    let again = server.run(&agent_id, bash("echo after")).await;
    assert_eq!(again["output"], "after\n");
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "run\n", "ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_only_mode_end_to_end() {
    let server = Server::start().await;
    server.proxy.block_upgrades();
    let dir = tempfile::tempdir().unwrap();
    let agent = AgentProcess::start(&server, dir.path(), &[]);
    let listed = server
        .wait_agent("heartbeating over HTTP", |a| !a["last_heartbeat"].is_null())
        .await;
    let agent_id = listed["agent_id"].as_str().unwrap().to_owned();
    assert_eq!(listed["websocket_connected"], false);

    let task = server
        .run(&agent_id, bash("echo over http; echo warn >&2; exit 4"))
        .await;
    assert_eq!(task["status"], "failed", "{}", agent.log());
    assert_eq!(task["output"], "over http\n");
    assert_eq!(task["exit_code"], 4);

    // Partial output reaches the server while the task runs.
    let gate = dir.path().join("gate");
    let task_id = server
        .command(
            &agent_id,
            bash(&format!(
                "echo first; while [ ! -e {} ]; do sleep 0.05; done; echo second",
                gate.display()
            )),
        )
        .await;
    server
        .wait_task(&agent_id, &task_id, "streaming", |t| {
            t["output"] == "first\n" && t["status"] == "running"
        })
        .await;
    std::fs::write(&gate, "").unwrap();
    let task = server.finished(&agent_id, &task_id).await;
    assert_eq!(task["output"], "first\nsecond\n");

    // Cancel reaches it through the poll.
    let mark = uuid::Uuid::new_v4().to_string();
    let task_id = server
        .command(
            &agent_id,
            json!({"command": "sleep 100", "shell_type": "bash", "environment": {"SKYSHIFT_TEST_MARK": mark}}),
        )
        .await;
    wait_processes(&mark, 1).await;
    let path = format!("/api/agents/{agent_id}/tasks/{task_id}/cancel");
    server.expect(Method::POST, &path, None).await;
    assert_none_left(&mark, Duration::from_secs(2)).await;
    assert!(
        agent.log().contains("WebSocket unavailable"),
        "{}",
        agent.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_agent_registers_again() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, old_id) = connected(&server, dir.path(), &[]).await;
    server
        .expect(Method::DELETE, &format!("/api/agents/{old_id}"), None)
        .await;
    let listed = server
        .wait_agent("registered again", |a| {
            a["agent_id"] != old_id.as_str() && a["websocket_connected"] == true
        })
        .await;
    let new_id = listed["agent_id"].as_str().unwrap().to_owned();
    let task = server.run(&new_id, bash("echo reborn")).await;
    assert_eq!(task["output"], "reborn\n", "{}", agent.log());
    let state = std::fs::read_to_string(dir.path().join("id.agent.json")).unwrap();
    assert!(state.contains(&new_id));
    assert_eq!(server.agents().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_sleep_ends_within_a_second_leaving_nothing() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, agent_id) = connected(&server, dir.path(), &[]).await;
    let mark = uuid::Uuid::new_v4().to_string();
    let task_id = server
        .command(
            &agent_id,
            json!({"command": "sleep 100", "shell_type": "bash", "timeout": 300,
                   "environment": {"SKYSHIFT_TEST_MARK": mark}}),
        )
        .await;
    wait_processes(&mark, 1).await;
    let cancelled_at = Instant::now();
    let path = format!("/api/agents/{agent_id}/tasks/{task_id}/cancel");
    server.expect(Method::POST, &path, None).await;
    assert_none_left(&mark, Duration::from_secs(1)).await;
    eprintln!("cancel → process gone: {:?}", cancelled_at.elapsed());
    let task = server.finished(&agent_id, &task_id).await;
    assert_eq!(task["status"], "failed");
    assert!(
        task["error"].as_str().unwrap().contains("cancel"),
        "{task}\n{}",
        agent.log()
    );
    assert!(processes_with(&mark).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_delivered_twice_runs_once_and_tasks_run_side_by_side() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, agent_id) = connected(&server, dir.path(), &["--max-tasks", "3"]).await;
    let gate = dir.path().join("gate");
    let wait = format!("while [ ! -e {} ]; do sleep 0.05; done", gate.display());
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            server
                .command(
                    &agent_id,
                    bash(&format!(
                        "echo {n} >> {}/ran; {wait}; echo {n}",
                        dir.path().display()
                    )),
                )
                .await,
        );
    }
    // All three run at once on the agent (each waits for the gate).
    wait_file_lines(&dir.path().join("ran"), 3).await;
    // A reconnect makes the server deliver the running tasks again.
    server.cut_connections().await;
    agent.wait_log("WebSocket connected", 2).await;
    std::fs::write(&gate, "").unwrap();
    for (n, id) in ids.iter().enumerate() {
        let task = server.finished(&agent_id, id).await;
        assert_eq!(task["output"], format!("{n}\n"), "{}", agent.log());
    }
    let ran = std::fs::read_to_string(dir.path().join("ran")).unwrap();
    assert_eq!(ran.lines().count(), 3, "each task ran once: {ran}");
    assert!(
        agent.log().contains("task delivered again while it runs"),
        "no redelivery seen: {}",
        agent.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_interrupted_by_an_agent_crash_is_reported_failed_not_run_again() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, agent_id) = connected(&server, dir.path(), &[]).await;
    let runs = dir.path().join("runs");
    let mark = uuid::Uuid::new_v4().to_string();
    let task_id = server
        .command(
            &agent_id,
            json!({"command": format!("echo run >> {}; sleep 100", runs.display()), "shell_type": "bash",
                   "environment": {"SKYSHIFT_TEST_MARK": mark}}),
        )
        .await;
    // Running on the agent (the server calls a delivered task running already).
    wait_processes(&mark, 1).await;
    agent.kill().await;
    // The orphaned shell is not the agent's to clean up after a SIGKILL; the test's own.
    for pid in processes_with(&mark) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let agent = AgentProcess::start(&server, dir.path(), &[]);
    let task = tokio::time::timeout(
        Duration::from_secs(15),
        server.finished(&agent_id, &task_id),
    )
    .await
    .unwrap_or_else(|_| panic!("no result after the restart:\n{}", agent.log()));
    assert_eq!(task["status"], "failed", "{}", agent.log());
    assert!(
        task["error"].as_str().unwrap().contains("not run again"),
        "{task}"
    );
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "run\n", "ran once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_websocket_keeps_to_http() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = AgentProcess::start(&server, dir.path(), &["--no-websocket"]);
    let listed = server
        .wait_agent("heartbeating", |a| !a["last_heartbeat"].is_null())
        .await;
    let agent_id = listed["agent_id"].as_str().unwrap().to_owned();
    let task = server.run(&agent_id, bash("echo polled")).await;
    assert_eq!(task["output"], "polled\n");
    assert_eq!(server.agents().await[0]["websocket_connected"], false);
    assert!(!agent.log().contains("WebSocket"), "{}", agent.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_the_next_server() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on the first address: the agent moves on to the second.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    std::fs::write(dir.path().join("id.ini"), &server.id_ini).unwrap();
    let config = dir.path().join("id.ini");
    let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
    let _agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_skyshift-agent"))
        .arg("--config")
        .arg(&config)
        .args(["--server", &dead_url, "--server", &server.base])
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let listed = server
        .wait_agent("connected through the second server", |a| {
            a["websocket_connected"] == true
        })
        .await;
    let task = server
        .run(listed["agent_id"].as_str().unwrap(), bash("echo failover"))
        .await;
    assert_eq!(task["output"], "failover\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_the_server_already_has_leaves_the_outbox() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (agent, agent_id) = connected(&server, dir.path(), &[]).await;
    let gate = dir.path().join("gate");
    let started = dir.path().join("started");
    let task_id = server
        .command(
            &agent_id,
            bash(&format!(
                "echo > {}; while [ ! -e {} ]; do sleep 0.05; done; echo late",
                started.display(),
                gate.display()
            )),
        )
        .await;
    wait_file_lines(&started, 1).await;
    // Someone else reports the task first (as a previous delivery that was not acknowledged).
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("id.agent.json")).unwrap()).unwrap();
    let response = reqwest::Client::new()
        .post(format!(
            "{}/api/agents/{agent_id}/tasks/{task_id}/result",
            server.base
        ))
        .bearer_auth(state["agent_token"].as_str().unwrap())
        .json(&json!({"status": "completed", "output": "first\n", "exit_code": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    std::fs::write(&gate, "").unwrap();
    agent
        .wait_log("the server already had this result", 1)
        .await;
    assert_eq!(
        std::fs::read_dir(dir.path().join("id.outbox"))
            .unwrap()
            .count(),
        0
    );
    let task = server.task(&agent_id, &task_id).await;
    assert_eq!(task["output"], "first\n", "the first report stands");
}
