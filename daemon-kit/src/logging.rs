//! Logging set-up shared by the three daemons: `tracing` to stderr, filtered
//! by `RUST_LOG` (default `info`), colours only on a terminal so that the
//! launcher's captured output and journald stay plain text.

/// Installs the process-wide subscriber; call once from `main`.
pub fn init() {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
