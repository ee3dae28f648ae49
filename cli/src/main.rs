//! The `tlsresume` command: compare the backends' resumption behaviour, decode resumption
//! values, serve, probe and scan.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tlsresume::Error;
use tlsresume_compare as compare;
use tlsresume_compare::{report, Pki, Plan, PolicyKind, Scenario, Wire};

/// TLS session resumption over OpenSSL, GnuTLS and rustls, observed the way Exim reports it.
#[derive(Parser, Debug)]
#[command(name = "tlsresume", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
// Parsed once per run: the size of the largest variant (serve's options) costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run Exim's resumption scenarios between every server and client backend (real
    /// handshakes on loopback, virtual clock) and print what each end reports.
    Compare(CompareArgs),
    /// Print Exim's text for a resumption value (`$tls_in_resumption`), decimal or 0x hex, or
    /// explain the TLS fields of a whole log line (Exim's or tlsresume's): X= with its `*`,
    /// CV=, and the resumption value.
    #[command(
        after_help = "Examples:\n  tlsresume decode 0x1d\n  tlsresume decode 29\n  \
tlsresume decode '2024-05-01 10:00:00 1sABCD-000123-00 => a@example.net R=dnslookup T=remote_smtp H=mx.example.net [192.0.2.1] X=TLS1.3:TLS_AES_256_GCM_SHA384:256* CV=no'\n  \
grep 'X=' /var/log/exim4/mainlog | tlsresume decode -"
    )]
    Decode {
        /// The value (23, 0x17), a whole log line (quoted, or as several words), or `-` to
        /// explain each line read from stdin.
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        value: Vec<String>,
    },
    /// Run a real TLS server (TLS-on-connect or SMTP STARTTLS sink) for testing clients,
    /// logging one Exim-style line per connection with the server's resumption bits.
    Serve(cli::serve::ServeArgs),
    /// Connect to a server N times sharing one session cache and report, per connection, the
    /// Exim-style cipher, verification and client resumption bits, then why sessions did or
    /// did not resume.
    Probe(cli::probe::ProbeArgs),
    /// Audit a server's session resumption (per TLS version, with reasons) and, with
    /// --starttls smtp, its early pipelining; several addresses: whether they share ticket keys.
    Scan(cli::scan::ScanArgs),
}

/// Options of `compare`.
#[derive(clap::Args, Debug)]
struct CompareArgs {
    /// Server backends, comma-separated (default: all compiled in).
    #[arg(long, value_delimiter = ',')]
    server: Vec<String>,
    /// Client backends, comma-separated (default: all compiled in).
    #[arg(long, value_delimiter = ',')]
    client: Vec<String>,
    /// TLS versions: 1.2, 1.3 (default: both).
    #[arg(long, value_delimiter = ',')]
    tls: Vec<String>,
    /// Policies: exim, hardened (default: both).
    #[arg(long, value_delimiter = ',')]
    policy: Vec<String>,
    /// How TLS starts: tls-on-connect, starttls (default: both).
    #[arg(long, value_delimiter = ',')]
    transport: Vec<String>,
    /// Scenarios (default: all): getticket, resume, renewal, postrenewal, timeout, notreq,
    /// server_excludes, noverify_getticket, noverify_resume, lbserver_change, ocsp_getticket,
    /// ocsp_resume, rotation, dane_ee_getticket, dane_ee_resume, dane_ta_getticket,
    /// dane_ta_resume, dane_nomatch, dane_nomatch_resume.
    #[arg(long, value_delimiter = ',')]
    scenario: Vec<String>,
    /// Print the behaviour-matrix document (Markdown) instead of the table.
    #[arg(long, conflicts_with = "json")]
    markdown: bool,
    /// Print one JSON object `{"results": [...]}` instead of the table.
    #[arg(long)]
    json: bool,
    /// After the summary, list every connection: both ends' decoded bits, resumed or not, the
    /// Exim cipher string, verification and OCSP.
    #[arg(long, conflicts_with_all = ["json", "markdown"])]
    detail: bool,
    /// Also write an SVG picture of the ticket lifecycle per key flavour (key windows over the
    /// virtual hours, and each scenario's ticket issued / accepted / renewed / rejected).
    #[arg(long, value_name = "FILE.svg")]
    timeline: Option<std::path::PathBuf>,
    /// Certificates to run with: `generated` (default), a throwaway CA and server certificate
    /// made at run time, with an OCSP response; `committed`, the TEST PKI committed in
    /// `tests/pki/` (built into the binary; its private keys are public, for tests only).
    #[arg(long, value_enum, default_value_t = PkiChoice::Generated)]
    pki: PkiChoice,
    /// Run every case through the async (tokio) API as well: both ends async, then an async
    /// server with a blocking client and a blocking server with an async client. The async run
    /// is reported; a cell where the runs disagree is reported failed, saying how.
    #[arg(long = "async")]
    async_io: bool,
}

/// Where `compare` gets its certificates.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PkiChoice {
    /// A throwaway CA and server certificate made at run time, with an OCSP response.
    Generated,
    /// The TEST PKI committed in `tests/pki/` (its private keys are public).
    Committed,
}

/// Parses a comma-separated option's items, or gives `default` when none were given.
fn parse_list<T>(
    items: &[String],
    default: Vec<T>,
    parse: impl Fn(&str) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    if items.is_empty() {
        return Ok(default);
    }
    items.iter().map(|s| parse(s)).collect()
}

/// The cases and scenarios `compare` runs, from its options.
fn plan(args: &CompareArgs) -> Result<Plan, Error> {
    let all = Plan::all();
    Ok(Plan {
        servers: parse_list(
            &args.server,
            all.servers.clone(),
            tlsresume::backends::parse,
        )?,
        clients: parse_list(
            &args.client,
            all.clients.clone(),
            tlsresume::backends::parse,
        )?,
        versions: parse_list(&args.tls, all.versions.clone(), compare::parse_version)?,
        wires: parse_list(&args.transport, all.wires.clone(), |s| {
            Wire::ALL
                .into_iter()
                .find(|w| w.name() == s.trim())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "unknown transport '{s}'; transports: tls-on-connect, starttls"
                    ))
                })
        })?,
        policies: parse_list(&args.policy, all.policies.clone(), |s| {
            s.parse::<PolicyKind>()
        })?,
        scenarios: parse_list(&args.scenario, all.scenarios.clone(), |s| {
            s.parse::<Scenario>()
        })?,
        io: if args.async_io {
            compare::Io::Async
        } else {
            compare::Io::Blocking
        },
    })
}

/// Runs `compare`.
fn compare_cmd(args: &CompareArgs) -> Result<(), Error> {
    let plan = plan(args)?;
    let pki = match args.pki {
        PkiChoice::Generated => Pki::generate()?,
        PkiChoice::Committed => Pki::committed()?,
    };
    let show_progress = std::io::stderr().is_terminal();
    let outcomes = compare::run(&plan, &pki, &mut |done, total| {
        if show_progress {
            let width = 30;
            let filled = done * width / total.max(1);
            eprint!(
                "\r[{}{}] {done}/{total} cases",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
            if done == total {
                eprintln!();
            }
        }
    });
    if let Some(path) = &args.timeline {
        std::fs::write(path, compare::timeline_svg(&outcomes)).map_err(|e| Error::File {
            path: path.display().to_string(),
            why: format!("cannot write the timeline: {e}"),
        })?;
    }
    let text = if args.json {
        report::json(&outcomes)
    } else if args.markdown {
        report::markdown(&outcomes)
    } else {
        let backends: Vec<&str> = tlsresume::backends::available()
            .iter()
            .map(|k| k.name())
            .collect();
        let colour = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let mut text = format!(
            "tlsresume compare: {} cases (backends: {}); --detail lists every connection\n",
            plan.cases().len(),
            backends.join(", ")
        );
        text.push_str(&report::summary(&outcomes, colour));
        if args.detail {
            text.push_str("\nEvery connection:\n");
            text.push_str(&report::table(&outcomes));
        }
        text
    };
    print_out(&text);
    Ok(())
}

/// Writes `text` to stdout; a closed pipe (`| head`) ends the output quietly.
fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Runs `decode`: one value or line from the arguments, or every line of stdin with `-`.
fn decode_cmd(words: &[String]) -> Result<(), Error> {
    if words.len() == 1 && words[0] == "-" {
        use std::io::BufRead;
        let mut text = String::new();
        for line in std::io::stdin().lock().lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            text.push_str(&line);
            text.push('\n');
            match cli::decode::explain(&line) {
                Ok(lines) => lines.iter().for_each(|l| {
                    text.push_str("  ");
                    text.push_str(l);
                    text.push('\n');
                }),
                Err(e) => text.push_str(&format!("  ({e})\n")),
            }
        }
        print_out(&text);
        return Ok(());
    }
    let lines = cli::decode::explain(&words.join(" "))?;
    print_out(&(lines.join("\n") + "\n"));
    Ok(())
}

/// Exit status: 0 on success, 1 when a `probe` connection failed, 2 on bad arguments or
/// setup errors (one line `tlsresume: …` on stderr).
fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Compare(args) => compare_cmd(args).map(|()| ExitCode::SUCCESS),
        Command::Decode { value } => decode_cmd(value).map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => cli::install_log(args.json)
            .and_then(|()| cli::serve::run(args))
            .map(|()| ExitCode::SUCCESS),
        Command::Probe(args) => cli::install_log(args.json)
            .and_then(|()| cli::probe::run(args))
            .map(|all_ok| {
                if all_ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                }
            }),
        Command::Scan(args) => cli::scan::run(args).map(|all_reached| {
            if all_reached {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tlsresume: {e}");
            ExitCode::from(2)
        }
    }
}
