//! `herald user …` as an operator runs it, on both backends: users made, listed, given a new
//! password and deleted by separate processes, while a running server logs them in and ends
//! their sessions.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::process::{Server, herald};
use herald_store_postgres::test_support::fresh_database;
use nix::sys::signal::Signal;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};

/// Runs `herald ARGS` on the database, with `stdin` piped in (or no stdin at all: not a TTY).
fn run(dir: &Path, database: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = herald(dir);
    command.args(args).env("HERALD_DATABASE_URL", database).stdout(Stdio::piped()).stderr(Stdio::piped());
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = command.spawn().expect("spawn herald");
    if let Some(input) = stdin {
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn cookie<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .and_then(|v| v.split(';').next())
}

/// Logs in to the web UI; the session cookie, if the login worked.
fn log_in(client: &Client, server: &Server, email: &str, password: &str) -> Option<String> {
    let page = client.get(server.url("/login")).send().expect("login page");
    let login_cookie = cookie(&page, "herald_login").expect("login cookie").to_owned();
    let html = page.text().expect("html");
    let start = html.find("name=\"csrf\" value=\"").expect("csrf") + "name=\"csrf\" value=\"".len();
    let csrf = html[start..].split('"').next().expect("value");
    let body = serde_urlencoded::to_string([("csrf", csrf), ("email", email), ("password", password)]).expect("form");
    let response = client
        .post(server.url("/login"))
        .header(COOKIE, login_cookie)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .expect("login");
    cookie(&response, "herald_session").map(str::to_owned)
}

fn has_session(client: &Client, server: &Server, session: &str) -> bool {
    let response = client.get(server.url("/events")).header(COOKIE, session).send().expect("get");
    response.status() == StatusCode::OK
}

fn users_are_managed_from_the_command_line(dir: &Path, database: &str) {
    let run = |args: &[&str], stdin: Option<&str>| run(dir, database, args, stdin);
    let create = ["user", "create", "--email", " Ada@Example.com ", "--password-stdin"];

    // Refused before anything is stored, each with the reason.
    let short = run(&create, Some("elevenchars\n"));
    assert!(!short.status.success());
    assert!(stderr(&short).contains("password refused: it must be at least 12 characters"), "{}", stderr(&short));
    let no_terminal = run(&["user", "create", "--email", "ada@example.com"], None);
    assert!(!no_terminal.status.success());
    assert!(stderr(&no_terminal).contains("--password-stdin"), "{}", stderr(&no_terminal));
    let bad_email = run(&["user", "create", "--email", "ada", "--password-stdin"], Some("correct horse battery"));
    assert!(!bad_email.status.success());
    assert!(stderr(&bad_email).contains("invalid --email \"ada\""), "{}", stderr(&bad_email));
    let listed = run(&["user", "list"], None);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(listed.stdout.is_empty(), "nothing was created");

    // Created: stdout is the id, the email is kept lower-cased, the password is never shown.
    let created = run(&create, Some("correct horse battery\n"));
    assert!(created.status.success(), "{}", stderr(&created));
    let id = String::from_utf8(created.stdout.clone()).expect("utf8").trim().to_owned();
    assert!(id.starts_with("usr_"), "{id}");
    assert!(!stderr(&created).contains("horse"));
    let again = run(&create, Some("another long password\n"));
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already has a user ada@example.com"), "{}", stderr(&again));
    let listed = String::from_utf8(run(&["user", "list"], None).stdout).expect("utf8");
    assert!(listed.starts_with(&format!("{id}\tada@example.com\t")), "{listed}");
    assert!(!listed.contains("argon2"), "no hash in the list: {listed}");
    let unknown = run(&["user", "list", "--workspace", "acme"], None);
    assert!(stderr(&unknown).contains("herald workspace create acme"), "{}", stderr(&unknown));

    // A running server logs the user in; changes made by other processes end the sessions.
    let mut command = herald(dir);
    command.args(["serve", "--bind", "127.0.0.1:0"]).env("HERALD_DATABASE_URL", database);
    let mut server = Server::start(command, dir.join("serve.stderr"));
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    assert_eq!(log_in(&client, &server, "ada@example.com", "wrong horse battery"), None);
    let first = log_in(&client, &server, "ada@example.com", "correct horse battery").expect("logged in");
    assert!(has_session(&client, &server, &first));

    let changed = run(
        &["user", "set-password", "--email", "ADA@example.com", "--password-stdin"],
        Some("battery staple horse\r\n"),
    );
    assert!(changed.status.success(), "{}", stderr(&changed));
    assert!(!has_session(&client, &server, &first), "a new password ends the sessions made before");
    assert_eq!(log_in(&client, &server, "ada@example.com", "correct horse battery"), None);
    let second = log_in(&client, &server, "ada@example.com", "battery staple horse").expect("the new password");
    assert!(has_session(&client, &server, &second));

    let deleted = run(&["user", "delete", "--email", "ada@example.com"], None);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert!(!has_session(&client, &server, &second), "deleting the user ends their session");
    assert_eq!(log_in(&client, &server, "ada@example.com", "battery staple horse"), None);
    let twice = run(&["user", "delete", "--email", "ada@example.com"], None);
    assert!(!twice.status.success());
    assert!(stderr(&twice).contains("has no user ada@example.com"), "{}", stderr(&twice));
    let missing =
        run(&["user", "set-password", "--email", "bob@example.com", "--password-stdin"], Some("a long password"));
    assert!(stderr(&missing).contains("has no user bob@example.com"), "{}", stderr(&missing));

    server.signal(Signal::SIGTERM);
    assert!(server.wait(Duration::from_secs(15)).success());
    let log = server.stderr();
    assert!(!log.contains("horse") && !log.contains("argon2"), "no password or hash in the log:\n{log}");
}

#[test]
fn users_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let database = format!("sqlite://{}", dir.path().join("herald.db").display());
    users_are_managed_from_the_command_line(dir.path(), &database);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_on_postgres() {
    let db = fresh_database().await;
    let dir = tempfile::tempdir().expect("dir");
    let database = db.url().to_owned();
    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || users_are_managed_from_the_command_line(&path, &database))
        .await
        .expect("the scenario passed");
}
