//! `confab-signaling`: the signaling server on its own.

#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use confab_signaling::cli::{ServerArgs, init_logging, serve};

/// jemalloc returns freed memory to the system far better than glibc's allocator after
/// bursts (a roster fan-out, say): with ten thousand idle clients the server's resident
/// memory is about 40% lower (docs/performance.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Confab's WebSocket signaling server: a roster of who is online and a relay for call
/// setup (offers, answers, ICE candidates). Media never passes through it.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    /// Print the manual page (roff) and exit. For packaging: `make deb`.
    #[arg(long, hide = true)]
    manpage: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.manpage {
        return match print_manpage() {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("confab-signaling: {err}");
                ExitCode::FAILURE
            }
        };
    }
    init_logging();
    match serve(cli.server).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("confab-signaling: {err}");
            ExitCode::FAILURE
        }
    }
}

fn print_manpage() -> std::io::Result<()> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&page)?;
    stdout.flush()
}
