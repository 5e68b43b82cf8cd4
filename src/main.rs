//! `confab`: the Confab command line.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;
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
    Server(Box<ServerArgs>),
    /// Run a peer without a window: call someone or answer calls, with test media.
    Headless(Box<headless::HeadlessArgs>),
    /// Print the shell completion script for confab.
    ///
    /// For example: `confab completions bash > ~/.local/share/bash-completion/completions/confab`
    /// (the Debian package installs them for bash, zsh and fish).
    Completions {
        /// The shell to complete in.
        shell: Shell,
    },
    /// Print the manual page (roff); with --out-dir, write it and one page per command
    /// there (confab.1, confab-server.1, ...). For packaging: `make deb`.
    #[command(hide = true)]
    Manpage {
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        None => app::run(cli.app, false),
        Some(Command::Demo(args)) => app::run(args, true),
        Some(Command::Devices) => devices::print(),
        Some(Command::Server(args)) => run_async(serve(*args)),
        Some(Command::Headless(args)) => {
            run_async(async { headless::run(*args).await.map_err(Reason) })
        }
        Some(Command::Completions { shell }) => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "confab", &mut script);
            print(&script)
        }
        Some(Command::Manpage { out_dir }) => manpage(out_dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("confab: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The manual: `confab` alone to standard output, or every command's page into a folder.
fn manpage(out_dir: Option<PathBuf>) -> anyhow::Result<()> {
    // `help` is no command of its own in a manual.
    let command = Cli::command().disable_help_subcommand(true);
    match out_dir {
        Some(dir) => std::fs::create_dir_all(&dir)
            .and_then(|()| clap_mangen::generate_to(command, &dir))
            .with_context(|| format!("cannot write the manual pages to {}", dir.display())),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page)?;
            print(&page)
        }
    }
}

/// Writes to standard output, failing (not panicking) if it is closed.
fn print(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
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
