//! ferry-server: the reference sync server's command line. See `ferry-server --help`.

use clap::Parser;
use ferry_server::config::Cli;
use std::io::IsTerminal;

/// mimalloc instead of the system allocator: a push allocates a few times per mutation
/// (decoding, the apply rules, the statements' arguments, the answer), and glibc's malloc and
/// free were 15 % of the server's CPU samples under push load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    if let Err(e) = ferry_server::cli::run(cli).await {
        eprintln!("ferry-server: {e}");
        std::process::exit(1);
    }
}
