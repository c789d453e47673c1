//! The command line, parsed by clap: `payoutd --help` and `payoutd <command> --help` describe
//! every command, `--version` prints the version, and a usage error names the offending
//! argument and exits 2. What each command does on its own failure (exit 1, or 2 for an invalid
//! configuration) is the command's business, in `main.rs` and its module.

use clap::{Parser, Subcommand};

use crate::operators::cli::AdminCommand;

/// Where every command but `admin` reads its settings, shown under each command's help.
const CONFIGURATION: &str = "Configuration: config/default.toml (built in), then default.toml and \
$PAYOUTD_ENV.toml in ./config or $PAYOUTD_CONFIG_DIR, then the environment (PAYOUTD_ENV, \
DATABASE_URL, PAYOUTD_LISTEN_ADDR, COINSPAID_API_URL, OTEL_EXPORTER_OTLP_ENDPOINT, ...; see the \
README's Configuration section). RUST_LOG overrides the log filter.";

/// payoutd: holds, submits and settles CoinsPaid withdrawals exactly once.
#[derive(Debug, Parser)]
#[command(name = "payoutd", version, after_help = CONFIGURATION)]
pub struct Cli {
    /// Without a command: `serve`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API and the workers until SIGTERM or Ctrl-C (what `payoutd` alone does)
    #[command(after_help = CONFIGURATION)]
    Serve,
    /// Create the database if needed, apply every migration and exit (a pre-deploy job)
    #[command(after_help = CONFIGURATION)]
    Migrate,
    /// Exit 0 when this service's own GET /readyz answers 200 (for images without curl)
    #[command(after_help = CONFIGURATION)]
    Healthcheck,
    /// Print the OpenAPI document of the API on stdout (needs no database)
    Openapi,
    /// Run the CoinsPaid simulator on its own, for a payoutd configured to call it
    #[command(after_help = crate::simulator::cli::HELP)]
    Simulator,
    /// The operator API from a shell (needs PAYOUTD_ADMIN_TOKEN)
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_means_serve_and_unknown_ones_are_usage_errors() {
        assert!(Cli::try_parse_from(["payoutd"]).unwrap().command.is_none());
        assert!(matches!(
            Cli::try_parse_from(["payoutd", "migrate"]).unwrap().command,
            Some(Command::Migrate)
        ));
        let error = Cli::try_parse_from(["payoutd", "serve", "--port", "1"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("--port"), "{error}");
        let error = Cli::try_parse_from(["payoutd", "drop-table"]).unwrap_err();
        assert!(error.to_string().contains("drop-table"), "{error}");
    }
}
