//! The `skyshift-agent` binary before it reaches a server: a missing or invalid `id.ini` is one
//! line naming the key and exit code 2; `--print-service` prints a systemd unit.

use std::path::Path;
use std::process::{Command, Output};

const ID: &str = "6f1c1f7e-4d8a-4c2e-9a53-2f8f0c3b9d11";

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skyshift-agent"))
        .args(args)
        .env_remove("SKYSHIFT_AGENT_CONFIG")
        .env_remove("SKYSHIFT_AGENT_SERVER")
        .output()
        .expect("the agent binary runs")
}

#[track_caller]
fn assert_exit_2_naming(output: &Output, words: &[&str]) {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for word in words {
        assert!(stderr.contains(word), "`{word}` missing from: {stderr}");
    }
}

fn ini(dir: &Path, text: &str) -> String {
    let path = dir.join("id.ini");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn a_missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("id.ini");
    let output = agent(&["--config", missing.to_str().unwrap()]);
    assert_exit_2_naming(&output, &["id.ini", "cannot read"]);
}

#[test]
fn an_invalid_file_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("api_key = sk_x\nserver_url = http://127.0.0.1:9\n".to_owned(), vec!["customer_id"]),
        (format!("customer_id = {ID}\napi_key = nope\n"), vec!["api_key"]),
        (
            format!("customer_id = {ID}\napi_key = sk_x\nport = 70000\n"),
            vec!["port", "line 3"],
        ),
        (format!("customer_id = {ID}\napi_key = sk_x\n"), vec!["server_url"]),
        (
            format!("customer_id = {ID}\napi_key = sk_x\nserver_url = http://h\nserver_cert_sha256 = xyz\n"),
            vec!["server_cert_sha256"],
        ),
    ];
    for (text, words) in cases {
        let path = ini(dir.path(), &text);
        assert_exit_2_naming(&agent(&["--config", &path]), &words);
    }
}

#[test]
fn an_unreadable_ca_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = ini(
        dir.path(),
        &format!("customer_id = {ID}\napi_key = sk_x\nserver_url = https://127.0.0.1:9\n"),
    );
    let ca = dir.path().join("ca.pem");
    let output = agent(&["--config", &path, "--ca-cert", ca.to_str().unwrap()]);
    assert_exit_2_naming(&output, &["ca.pem"]);
}

#[test]
fn the_api_key_never_reaches_the_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = ini(dir.path(), "api_key = sk_very_secret_value\n");
    let output = agent(&["--config", &path]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("sk_very_secret_value"));
}

#[test]
fn print_service_prints_a_systemd_unit() {
    let output = agent(&["--print-service", "--config", "/etc/skyshift/id.ini"]);
    assert!(output.status.success());
    let unit = String::from_utf8(output.stdout).unwrap();
    assert!(unit.contains("[Service]"));
    assert!(unit.contains("--config /etc/skyshift/id.ini"));
    assert!(unit.contains("RestartPreventExitStatus=2"));
}
