//! Commands and tasks: delivery over HTTP polling and over the WebSocket, across disconnects,
//! results once, timeouts, big outputs, live streams, cancellation, bulk runs and the queue cap.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Db, TestApp};
use crate::on_both_backends;

on_both_backends!(
    http_agent_polls_and_reports_once,
    websocket_agent_gets_commands_at_once,
    commands_survive_a_disconnect,
    commands_are_validated,
    ten_megabytes_of_output_stay_whole,
    live_stream_delivers_chunks_in_order,
    cancel_pending_and_running_tasks,
    bulk_command_reaches_every_agent,
);

async fn http_agent_polls_and_reports_once(app: TestApp) {
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent, token) = app.register_agent(&key, "http-1").await;
    let (task, status) = app.command(&agent, "echo hi").await;
    assert_eq!(status, "pending");

    let poll = app
        .get(&format!("/api/agents/{agent}/commands"), Some(&token))
        .await
        .expect(StatusCode::OK);
    assert_eq!(poll["count"], 1);
    let command = &poll["commands"][0];
    assert_eq!(command["task_id"], task);
    assert_eq!(command["agent_id"], agent);
    assert_eq!(command["type"], "command");
    assert_eq!(command["command"], "echo hi");
    assert_eq!(command["shell_type"], "bash");
    assert_eq!(command["timeout"], 30);
    assert_eq!(app.task(&agent, &task).await["status"], "running");
    // Until it reports, every poll offers the task again (the agent deduplicates).
    let again = app
        .get(&format!("/api/agents/{agent}/commands"), Some(&token))
        .await
        .expect(StatusCode::OK);
    assert_eq!(again["count"], 1);
    assert_eq!(
        app.get(&format!("/api/agents/{agent}/commands"), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get(&format!("/api/agents/{agent}/commands"), Some(&key))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    let progress = app
        .post(
            &format!("/api/agents/{agent}/tasks/{task}/status"),
            Some(&token),
            json!({"status": "running", "output": "h"}),
        )
        .await;
    assert_eq!(progress.status, StatusCode::OK);
    assert_eq!(app.task(&agent, &task).await["output"], "h");

    let result = json!({"status": "completed", "output": "hi\nthere\n", "exit_code": 0});
    app.post(
        &format!("/api/agents/{agent}/tasks/{task}/result"),
        Some(&token),
        result.clone(),
    )
    .await
    .expect(StatusCode::OK);
    let second = app
        .post(
            &format!("/api/agents/{agent}/tasks/{task}/result"),
            Some(&token),
            json!({"status": "failed", "output": "other"}),
        )
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT);
    let done = app.task(&agent, &task).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(
        done["output"], "hi\nthere\n",
        "the whole output, not its first line"
    );
    assert_eq!(done["exit_code"], 0);
    assert_eq!(done["created_by"], "user:admin");
    assert!(done["finished_at"].is_string() && done["started_at"].is_string());
    assert_eq!(done["late_result"], false);

    let poll = app
        .get(&format!("/api/agents/{agent}/commands"), Some(&token))
        .await
        .expect(StatusCode::OK);
    assert_eq!(poll["count"], 0);
    let tasks = app
        .admin_get(&format!("/api/agents/{agent}/tasks"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(tasks["count"], 1);
    assert_eq!(tasks["tasks"][0]["output"], "hi\nthere\n");

    let unknown = app
        .post(
            &format!("/api/agents/{agent}/tasks/00000000-0000-0000-0000-000000000000/result"),
            Some(&token),
            result.clone(),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let not_final = app
        .post(
            &format!("/api/agents/{agent}/tasks/{task}/result"),
            Some(&token),
            json!({"status": "running", "output": ""}),
        )
        .await;
    assert_eq!(not_final.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn websocket_agent_gets_commands_at_once(app: TestApp) {
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent, token) = app.register_agent(&key, "ws-1").await;
    let mut socket = app.connect_agent(&agent, &token).await;
    socket.send(json!({"type": "heartbeat"})).await;
    let ack = socket.recv_type("heartbeat_ack").await;
    assert!(ack["timestamp"].is_string());

    let reply = app
        .admin_post(
            &format!("/api/agents/{agent}/commands"),
            json!({"command": "ls", "args": ["-l"], "shell_type": "bash", "timeout": 60,
                   "working_directory": "/tmp", "environment": {"GREETING": "hello"}}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(reply["status"], "accepted");
    let task = reply["task_id"].as_str().unwrap();
    let command = socket.recv_type("command").await;
    assert_eq!(command["task_id"], task);
    assert_eq!(command["command"], "ls");
    assert_eq!(command["args"], json!(["-l"]));
    assert_eq!(command["timeout"], 60);
    assert_eq!(command["working_directory"], "/tmp");
    assert_eq!(command["environment"], json!({"GREETING": "hello"}));

    socket.send(json!({"type": "task_status", "data": {"task_id": task, "status": "running", "output": "part one\n"}})).await;
    socket.result(task, "part one\npart two\n", 0).await;
    let done = app.wait_for_task(&agent, task, "completed").await;
    assert_eq!(done["output"], "part one\npart two\n");
    // A repeated result over the socket changes nothing.
    socket.result(task, "something else", 3).await;
    socket.send(json!({"type": "heartbeat"})).await;
    socket.recv_type("heartbeat_ack").await;
    let done = app.task(&agent, task).await;
    assert_eq!(
        (done["output"].as_str(), done["exit_code"].as_i64()),
        (Some("part one\npart two\n"), Some(0))
    );
}

async fn commands_survive_a_disconnect(app: TestApp) {
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent, token) = app.register_agent(&key, "flaky").await;
    let (task, status) = app.command(&agent, "uptime").await;
    assert_eq!(status, "pending", "sent while the agent was away");

    let mut socket = app.connect_agent(&agent, &token).await;
    let command = socket.recv_type("command").await;
    assert_eq!(command["task_id"], task, "delivered when it connects");
    drop(socket);

    // Delivered but not reported: it comes again on reconnect.
    let mut socket = app.connect_agent(&agent, &token).await;
    let command = socket.recv_type("command").await;
    assert_eq!(command["task_id"], task);
    socket.result(&task, "up 3 days", 0).await;
    let done = app.wait_for_task(&agent, &task, "completed").await;
    assert_eq!(done["output"], "up 3 days");
    drop(socket);

    // Once reported it is not delivered again, and a second report is refused.
    let mut socket = app.connect_agent(&agent, &token).await;
    socket.send(json!({"type": "heartbeat"})).await;
    let next = socket.recv().await.unwrap();
    assert_eq!(next["type"], "heartbeat_ack", "no command replayed: {next}");
    let again = app
        .post(
            &format!("/api/agents/{agent}/tasks/{task}/result"),
            Some(&token),
            json!({"status": "completed", "output": "x"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

async fn commands_are_validated(app: TestApp) {
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent, _) = app.register_agent(&key, "v").await;
    let path = format!("/api/agents/{agent}/commands");
    for body in [
        json!({"command": "", "shell_type": "bash"}),
        json!({"command": "ls", "shell_type": "zsh"}),
        json!({"command": "ls"}),
        json!({"command": "ls", "shell_type": "bash", "timeout": 0}),
        json!({"command": "ls", "shell_type": "bash", "timeout": 86401}),
        json!({"command": "ls", "shell_type": "bash", "environment": {"1BAD": "x"}}),
        json!({"command": "ls", "shell_type": "bash", "environment": {"A=B": "x"}}),
    ] {
        let reply = app.admin_post(&path, body.clone()).await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let ok = app
        .admin_post(
            &path,
            json!({"command": "ls", "shell_type": "powershell", "timeout": 86400}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    let unknown = app
        .admin_post(
            "/api/agents/00000000-0000-0000-0000-000000000000/commands",
            json!({"command": "ls", "shell_type": "cmd"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.post(&path, None, json!({"command": "ls", "shell_type": "cmd"}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let tasks = app
        .admin_get(&format!("/api/agents/{agent}/tasks"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(tasks["count"], 1, "refused commands were not stored");
}

async fn ten_megabytes_of_output_stay_whole(app: TestApp) {
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent, token) = app.register_agent(&key, "big").await;
    let output: String = (0..220_000)
        .map(|i| format!("line {i:07} of output.........................\n"))
        .collect();
    assert!(output.len() >= 10_000_000);

    // Over HTTP.
    let (task, _) = app.command(&agent, "cat big").await;
    app.post(
        &format!("/api/agents/{agent}/tasks/{task}/result"),
        Some(&token),
        json!({"status": "completed", "output": output, "exit_code": 0}),
    )
    .await
    .expect(StatusCode::OK);
    let stored = app.task(&agent, &task).await;
    assert_eq!(stored["output"].as_str().unwrap().len(), output.len());
    assert!(stored["output"].as_str().unwrap() == output);
    assert_eq!(stored["output_truncated"], false);

    // Over the WebSocket.
    let mut socket = app.connect_agent(&agent, &token).await;
    let (task, _) = app.command(&agent, "cat big again").await;
    socket.recv_type("command").await;
    socket.result(&task, &output, 0).await;
    let stored = app.wait_for_task(&agent, &task, "completed").await;
    assert!(stored["output"].as_str().unwrap() == output);
}

async fn live_stream_delivers_chunks_in_order(app: TestApp) {
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent, token) = app.register_agent(&key, "streamer").await;
    let mut socket = app.connect_agent(&agent, &token).await;
    let (task, _) = app.command(&agent, "long job").await;
    socket.recv_type("command").await;

    let response = app
        .client
        .get(format!(
            "{}/api/agents/{agent}/tasks/{task}/stream",
            app.base
        ))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let collector = tokio::spawn(read_events(response));

    let chunks: Vec<String> = (0..20).map(|i| format!("chunk {i}\n")).collect();
    for chunk in &chunks {
        socket.send(json!({"type": "task_status", "data": {"task_id": task, "status": "running", "output": chunk}})).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    socket.result(&task, &chunks.concat(), 0).await;
    let events = tokio::time::timeout(Duration::from_secs(10), collector)
        .await
        .expect("stream ends")
        .unwrap();
    let (last_name, last) = events.last().unwrap().clone();
    assert_eq!(last_name, "status");
    assert_eq!(last["status"], "completed");
    assert_eq!(last["exit_code"], 0);
    let streamed: String = events
        .iter()
        .filter(|(name, _)| name == "output")
        .map(|(_, data)| data["output"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, chunks.concat(), "every chunk, once, in order");

    let missing = app
        .admin_get(&format!(
            "/api/agents/{agent}/tasks/00000000-0000-0000-0000-000000000000/stream"
        ))
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// (event name, JSON data) pairs of a server-sent event stream, until it ends.
async fn read_events(response: reqwest::Response) -> Vec<(String, Value)> {
    use futures_util::StreamExt;
    let mut events = Vec::new();
    let mut buffer = String::new();
    let mut body = response.bytes_stream();
    while let Some(Ok(bytes)) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut name = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = value.trim().to_owned();
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.trim_start());
                }
            }
            if !data.is_empty() {
                events.push((name, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

async fn cancel_pending_and_running_tasks(app: TestApp) {
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent, token) = app.register_agent(&key, "cancel-me").await;

    // Pending: never runs.
    let (pending, _) = app.command(&agent, "sleep 100").await;
    let cancelled = app
        .admin_post(
            &format!("/api/agents/{agent}/tasks/{pending}/cancel"),
            json!({}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(cancelled["status"], "failed");
    assert_eq!(cancelled["error"], "cancelled by user:admin");
    let poll = app
        .get(&format!("/api/agents/{agent}/commands"), Some(&token))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        poll["count"], 0,
        "a cancelled pending task is never delivered"
    );

    // Running over the WebSocket: the agent is told to stop.
    let mut socket = app.connect_agent(&agent, &token).await;
    let (running, status) = app.command(&agent, "sleep 100").await;
    assert_eq!(status, "accepted");
    socket.recv_type("command").await;
    let (_, tech) = app.create_user("carl", "carl-pass-123", "tech").await;
    let cancelled = app
        .post(
            &format!("/api/agents/{agent}/tasks/{running}/cancel"),
            Some(&tech),
            json!({}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(cancelled["error"], "cancelled by user:carl");
    let cancel = socket.recv_type("cancel").await;
    assert_eq!(cancel["task_id"], running);
    // HTTP agents are offered it with their commands until they report.
    let poll = app
        .get(&format!("/api/agents/{agent}/commands"), Some(&token))
        .await
        .expect(StatusCode::OK);
    assert_eq!(poll["cancel"], json!([running]));
    socket.send(json!({"type": "task_result", "data": {"task_id": running, "status": "failed", "output": "partial", "error": "cancelled"}})).await;
    socket.send(json!({"type": "heartbeat"})).await;
    socket.recv_type("heartbeat_ack").await;
    let task = app.task(&agent, &running).await;
    assert_eq!(task["status"], "failed");
    assert_eq!(task["error"], "cancelled by user:carl");
    assert_eq!(task["output"], "partial");
    let poll = app
        .get(&format!("/api/agents/{agent}/commands"), Some(&token))
        .await
        .expect(StatusCode::OK);
    assert_eq!(poll["cancel"], json!([]));

    let again = app
        .admin_post(
            &format!("/api/agents/{agent}/tasks/{running}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let missing = app
        .admin_post(
            &format!("/api/agents/{agent}/tasks/00000000-0000-0000-0000-000000000000/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

async fn bulk_command_reaches_every_agent(app: TestApp) {
    let (customer, key) = app.customer_with_key("Fleet").await;
    let mut agents = Vec::new();
    for n in 0..3 {
        agents.push(app.register_agent(&key, &format!("node-{n}")).await);
    }
    let (_, other_key) = app.customer_with_key("Elsewhere").await;
    let (outsider, _) = app.register_agent(&other_key, "outsider").await;
    let mut socket = app.connect_agent(&agents[0].0, &agents[0].1).await;

    let reply = app
        .admin_post(
            "/api/commands",
            json!({"command": "hostname", "shell_type": "bash", "customer_uuid": customer}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(reply["count"], 3);
    let statuses: Vec<&str> = reply["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "accepted").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == "pending").count(), 2);
    assert!(!reply.to_string().contains(&outsider));
    socket.recv_type("command").await;

    let ids: Vec<&str> = agents.iter().take(2).map(|(id, _)| id.as_str()).collect();
    let reply = app
        .post(
            "/api/commands",
            Some(&key),
            json!({"command": "whoami", "shell_type": "bash", "agent_ids": ids}),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(reply["count"], 2);
    let task_id = reply["tasks"][1]["task_id"].as_str().unwrap();
    let task = app
        .get(
            &format!("/api/agents/{}/tasks/{task_id}", agents[1].0),
            Some(&key),
        )
        .await
        .expect(StatusCode::OK);
    assert_eq!(task["created_by"], "customer:Fleet");

    for body in [
        json!({"command": "x", "shell_type": "bash"}),
        json!({"command": "x", "shell_type": "bash", "agent_ids": []}),
        json!({"command": "x", "shell_type": "bash", "agent_ids": ids, "customer_uuid": customer}),
    ] {
        assert_eq!(
            app.admin_post("/api/commands", body.clone()).await.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
    }
}

#[tokio::test]
async fn tasks_without_a_result_time_out_and_late_results_are_kept() {
    let app = spawn_app_with(Db::Sqlite, |config| {
        config.task_grace = Duration::from_secs(1)
    })
    .await;
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent, token) = app.register_agent(&key, "slow").await;
    let mut socket = app.connect_agent(&agent, &token).await;
    let reply = app
        .admin_post(
            &format!("/api/agents/{agent}/commands"),
            json!({"command": "sleep 5", "shell_type": "bash", "timeout": 1}),
        )
        .await
        .expect(StatusCode::OK);
    let task = reply["task_id"].as_str().unwrap();
    socket.recv_type("command").await;
    let failed = app.wait_for_task(&agent, task, "failed").await;
    assert!(
        failed["error"].as_str().unwrap().contains("timed out"),
        "{failed}"
    );
    assert!(
        failed["error"].as_str().unwrap().contains("1 s"),
        "{failed}"
    );

    // Its real result still arrives: kept, marked late.
    socket.result(task, "finally", 0).await;
    let done = app.wait_for_task(&agent, task, "completed").await;
    assert_eq!(done["late_result"], true);
    assert_eq!(done["output"], "finally");
    assert_eq!(done["error"], Value::Null);
}

#[tokio::test]
async fn pending_commands_are_capped() {
    let app = spawn_app_with(Db::Sqlite, |config| config.max_pending_commands = 3).await;
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent, _) = app.register_agent(&key, "stuck").await;
    for _ in 0..3 {
        app.command(&agent, "true").await;
    }
    let reply = app
        .admin_post(
            &format!("/api/agents/{agent}/commands"),
            json!({"command": "true", "shell_type": "bash"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(reply.headers.contains_key("retry-after"));
    let tasks = app
        .admin_get(&format!("/api/agents/{agent}/tasks"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(tasks["count"], 3);
}

#[tokio::test]
async fn output_past_the_cap_is_cut_and_marked() {
    let app = spawn_app_with(Db::Sqlite, |config| config.task_output_cap = 1000).await;
    let (_, key) = app.customer_with_key("Acme").await;
    let (agent, token) = app.register_agent(&key, "chatty").await;
    let (task, _) = app.command(&agent, "yes").await;
    app.post(
        &format!("/api/agents/{agent}/tasks/{task}/status"),
        Some(&token),
        json!({"status": "running", "output": "y\n".repeat(400)}),
    )
    .await
    .expect(StatusCode::OK);
    app.post(
        &format!("/api/agents/{agent}/tasks/{task}/status"),
        Some(&token),
        json!({"status": "running", "output": "y\n".repeat(400)}),
    )
    .await
    .expect(StatusCode::OK);
    let partial = app.task(&agent, &task).await;
    assert_eq!(partial["output"].as_str().unwrap().len(), 1000);
    assert_eq!(partial["output_truncated"], true);
    app.post(
        &format!("/api/agents/{agent}/tasks/{task}/result"),
        Some(&token),
        json!({"status": "completed", "output": "y\n".repeat(2000)}),
    )
    .await
    .expect(StatusCode::OK);
    let done = app.task(&agent, &task).await;
    assert_eq!(done["output"].as_str().unwrap().len(), 1000);
    assert_eq!(done["output_truncated"], true);
}
