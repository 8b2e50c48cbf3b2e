//! The `socklab` binary: parses flags, then serves until SIGINT/SIGTERM, or exports.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use socklab::cli::{Cli, Command};
use socklab::{Server, shutdown};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if cli.quiet {
        "socklab=warn"
    } else {
        "socklab=info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match &cli.command {
        Some(command @ Command::Export { .. }) => export(command),
        Some(Command::Connect(args)) => match socklab::cli::connect::run(args) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("socklab connect: {e}");
                ExitCode::FAILURE
            }
        },
        None => serve(&cli),
    }
}

fn export(command: &Command) -> ExitCode {
    let Command::Export {
        sessions,
        all,
        since,
        until,
        direction,
        format,
        db,
    } = command
    else {
        unreachable!("export() is called for the export subcommand");
    };
    let db = db.clone().unwrap_or_else(socklab::config::default_db_path);
    let selection = socklab::export::Selection {
        sessions: sessions.clone(),
        all: *all,
        since_ms: *since,
        until_ms: *until,
        direction: direction.map(|d| match d {
            socklab::cli::ExportDirection::Up => socklab::model::Direction::Up,
            socklab::cli::ExportDirection::Down => socklab::model::Direction::Down,
        }),
        filter: None,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = socklab::export::export(&db, &selection, *format, &mut out);
    match result.and_then(|n| out.flush().map(|_| n).map_err(Into::into)) {
        Ok(_) => ExitCode::SUCCESS,
        // The reader went away (`socklab export --all | head`): what it wanted, it has.
        Err(socklab::export::ExportError::Write(e))
            if e.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("socklab export: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft limit on open files to the hard limit: every device is a file
/// descriptor, and the usual soft default (1024) would cap socklab at about a thousand
/// devices while the hard limit allows far more.
#[cfg(unix)]
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass, which outlives the call.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::debug!("could not raise the open-file limit");
            }
        }
    }
}

/// Tells the operator which certificate the TLS listeners present and how a device
/// trusts it.
fn print_tls_cert(cert: &socklab::server::TlsCertSummary) {
    let how = match cert.origin {
        "given" => "from --cert",
        "created" => "self-signed, generated now and kept for later starts",
        "renewed" => "self-signed, generated now",
        _ => "self-signed, kept from an earlier start",
    };
    println!("socklab: TLS certificate {} ({how})", cert.path.display());
    println!("socklab: TLS certificate SHA-256 {}", cert.sha256);
    if cert.origin != "given" {
        println!(
            "socklab: devices trust it with ussl.wrap_socket(sock, ca=PEM), PEM being that \
             file's text; it names {}",
            cert.names.join(", ")
        );
    }
    if cert.origin == "renewed" {
        println!(
            "socklab: warning: the kept certificate did not name {}; this new one does, and \
             devices that trusted the old one must be given the new PEM",
            cert.added.join(", ")
        );
    }
}

fn serve(cli: &Cli) -> ExitCode {
    #[cfg(unix)]
    raise_fd_limit();
    let config = cli.config();
    if let Err(e) = config.check() {
        eprintln!("socklab: {e}");
        return ExitCode::from(2);
    }
    // Only the default location is created; a given --db must be in an existing directory.
    if cli.db.is_none()
        && let Some(dir) = config.db.parent()
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("socklab: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    if let Some(dir) = config.db.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        eprintln!(
            "socklab: directory {} does not exist: create it, or pass another --db",
            dir.display()
        );
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("socklab: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        // Handlers first: a SIGTERM during start-up must still shut down gracefully.
        let first_signal = shutdown::signal();
        let server = Server::bind(config.clone()).await?;
        let addrs = server.addrs();
        let query = addrs
            .token
            .as_ref()
            .map(|t| format!("?token={t}"))
            .unwrap_or_default();
        let listeners: Vec<String> = (addrs.tcp.iter().map(|a| format!("tcp {a}")))
            .chain(addrs.udp.iter().map(|a| format!("udp {a}")))
            .chain(addrs.tls.iter().map(|a| format!("tls {a}")))
            .collect();
        println!("socklab: devices on {}", listeners.join(", "));
        if let Some(cert) = &addrs.tls_cert {
            print_tls_cert(cert);
        }
        let browse = socklab::config::browsable(addrs.http);
        println!("socklab: dashboard http://{browse}/{query}");
        if browse != addrs.http {
            println!(
                "socklab: the dashboard listens on every interface ({}): from another machine \
                 use this machine's address, port {}",
                addrs.http,
                addrs.http.port()
            );
        }
        if let Some(token) = &addrs.token {
            println!("socklab: API token {token} (Authorization: Bearer TOKEN)");
        }
        println!(
            "socklab: history in {}; type help for commands",
            config.db.display()
        );
        server
            .run(async {
                first_signal.await;
                // A second Ctrl-C while shutting down (a device task stuck on a full disk,
                // say) exits at once instead of being swallowed.
                tokio::spawn(async {
                    shutdown::signal().await;
                    eprintln!("socklab: second signal, exiting without waiting");
                    std::process::exit(130);
                });
            })
            .await
    });
    // The stdin reader thread may still be blocked in a read; do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("socklab: {e}");
            ExitCode::FAILURE
        }
    }
}
