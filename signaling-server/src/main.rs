//! `confab-signaling`: the signaling server on its own.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use confab_signaling::cli::{ServerArgs, init_logging, serve};

/// Confab's WebSocket signaling server: a roster of who is online and a relay for call
/// setup (offers, answers, ICE candidates). Media never passes through it.
/// jemalloc returns freed memory to the system far better than glibc's allocator after
/// bursts (a roster fan-out, say): with ten thousand idle clients the server's resident
/// memory is about 40% lower (docs/performance.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match serve(cli.server).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("confab-signaling: {err}");
            ExitCode::FAILURE
        }
    }
}
