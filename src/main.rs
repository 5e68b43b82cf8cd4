//! `confab`: the Confab command line.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use confab_signaling::cli::{ServerArgs, init_logging, serve};

use confab::{app, devices, headless};

/// jemalloc returns freed memory to the system far better than glibc's allocator after
/// bursts (a roster fan-out, say): with ten thousand idle clients the server's resident
/// memory is about 40% lower (docs/performance.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "confab",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no command: open the window.
    #[command(flatten)]
    app: app::AppArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Open the window with an "Echo bot" to call: it answers with a test pattern and a
    /// tone, and echoes chat.
    Demo(app::AppArgs),
    /// List cameras, microphones and speakers.
    Devices,
    /// Run the bundled signaling server (the same as `confab-signaling`).
    Server(ServerArgs),
    /// Run a peer without a window: call someone or answer calls, with test media.
    Headless(headless::HeadlessArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        None => app::run(cli.app, false),
        Some(Command::Demo(args)) => app::run(args, true),
        Some(Command::Devices) => devices::print(),
        Some(Command::Server(args)) => run_async(serve(args)),
        Some(Command::Headless(args)) => {
            run_async(async { headless::run(args).await.map_err(Reason) })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("confab: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// An error whose message is the whole story (a headless peer's one-line reason).
#[derive(Debug)]
struct Reason(anyhow::Error);

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for Reason {}

fn run_async<E>(future: impl Future<Output = Result<(), E>>) -> anyhow::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(future)?;
    Ok(())
}
