//! `herald`: parses the command line, loads settings, runs the chosen command.

use std::process::ExitCode;

use herald_server::app::cli::{
    ApiKeyCommand, Cli, Command, ConfigCommand, QueueCommand, UserCommand, WorkspaceCommand,
};
use herald_server::app::config::{Loader, SettingError};
use herald_server::app::{cli, commands, settings, telemetry};

/// mimalloc rather than the system's allocator: Herald allocates and frees many small values
/// per request (JSON trees, SQL text, HTTP headers) across threads, where glibc's malloc took
/// about a sixth of the CPU in the webhook benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status for unusable settings (as sysexits' EX_CONFIG).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("herald: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

fn bad_setting(err: &SettingError) -> ExitCode {
    eprintln!("herald: {err}");
    ExitCode::from(EXIT_CONFIG)
}

async fn run(cli: Cli) -> ExitCode {
    let loader = match Loader::new(&cli.global) {
        Ok(loader) => loader,
        Err(e) => return bad_setting(&e),
    };
    let common = match loader.common(&cli.global) {
        Ok(common) => common,
        Err(e) => return bad_setting(&e),
    };
    let result = match cli.command {
        Command::Config(ConfigCommand::Example) => {
            print!("{}", settings::example_file());
            Ok(())
        }
        Command::Config(ConfigCommand::Check(args)) => match loader.serve(&args) {
            Ok(settings) => {
                println!("{common:#?}\n{settings:#?}");
                Ok(())
            }
            Err(e) => return bad_setting(&e),
        },
        command => {
            telemetry::init_logging(common.log_format, &common.log_filter);
            match command {
                Command::Serve(args) => match loader.serve(&args) {
                    Ok(settings) => commands::serve(&common, settings).await,
                    Err(e) => return bad_setting(&e),
                },
                Command::Migrate => commands::migrate(&common).await,
                Command::ApiKey(ApiKeyCommand::Create { workspace, name }) => {
                    commands::api_key_create(&common, &workspace, &name).await
                }
                Command::Workspace(WorkspaceCommand::Create { name }) => {
                    commands::workspace_create(&common, &name).await
                }
                Command::Workspace(WorkspaceCommand::List) => commands::workspace_list(&common).await,
                Command::User(UserCommand::Create { email, workspace, password }) => {
                    commands::user_create(&common, &workspace, &email, password.password_stdin).await
                }
                Command::User(UserCommand::List { workspace }) => commands::user_list(&common, &workspace).await,
                Command::User(UserCommand::Delete { email, workspace }) => {
                    commands::user_delete(&common, &workspace, &email).await
                }
                Command::User(UserCommand::SetPassword { email, workspace, password }) => {
                    commands::user_set_password(&common, &workspace, &email, password.password_stdin).await
                }
                Command::Queue(QueueCommand::Stats) => commands::queue_stats(&common).await,
                Command::Queue(QueueCommand::Ping { count, workspace }) => {
                    commands::queue_ping(&common, &workspace, count).await
                }
                Command::Config(_) => Ok(()),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "command failed");
            eprintln!("herald: {e:#}");
            ExitCode::FAILURE
        }
    }
}
