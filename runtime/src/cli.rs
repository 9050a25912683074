//! Command-line surface, the same as regsync's (CLI-1 … CLI-11): `once`,
//! `check`, `server`, `config`, `version`, with `-c/--config`, `-v/--verbosity`
//! and `--logopt` accepted before or after the command, plus `completion`
//! (cobra gives regsync one).

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Utility for mirroring docker repositories.
#[derive(Debug, Parser)]
#[command(name = "regsync", about = "Utility for mirroring docker repositories", disable_version_flag = true)]
pub struct Cli {
    /// Log level (trace, debug, info, warn, error)
    #[arg(short = 'v', long = "verbosity", global = true, default_value = "info")]
    pub verbosity: String,
    /// Log options (json)
    #[arg(long = "logopt", global = true)]
    pub logopt: Vec<String>,
    /// Config file ("-" reads standard input)
    #[arg(short = 'c', long = "config", global = true)]
    pub config: Option<String>,
    /// The command to run.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags shared by the commands that run sync steps.
#[derive(Debug, Clone, Args)]
pub struct RunFlags {
    /// Stop processing on the first error
    #[arg(long = "abort-on-error")]
    pub abort_on_error: bool,
    /// Do only shard I of N of the work (target repositories), e.g. 0/3; also
    /// REGSYNC_SHARD, or Kubernetes' JOB_COMPLETION_INDEX or pod ordinal with REGSYNC_SHARDS
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

/// regsync's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// processes each sync command once, ignoring cron schedule
    Once {
        /// Flags every syncing command has.
        #[command(flatten)]
        run: RunFlags,
        /// Only copy tags that are missing on the target
        #[arg(long)]
        missing: bool,
        /// Output format of the run's report on stdout
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// processes each sync command once but skip actual copy
    Check {
        /// Flags every syncing command has.
        #[command(flatten)]
        run: RunFlags,
        /// Output format of the stale-image summary on stdout
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// run the regsync server
    Server {
        /// Flags every syncing command has.
        #[command(flatten)]
        run: RunFlags,
        /// Serve the status page (/), /status.json, /metrics, /healthz and /readyz on this address (e.g. 127.0.0.1:9090)
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// How long running copies may take to finish at shutdown (Go duration)
        #[arg(long, default_value = "30s", value_parser = parse_grace)]
        grace: std::time::Duration,
    },
    /// show the processed config (defaults merged, templates expanded, secrets redacted)
    Config,
    /// Work with WebAssembly plugins (publish them as OCI artifacts)
    Plugin {
        /// What to do.
        #[command(subcommand)]
        action: PluginCommand,
    },
    /// Generate the autocompletion script for the specified shell
    Completion {
        /// The shell to write the script for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Show the version
    Version {
        /// Format output with go template syntax
        #[arg(long, default_value = "{{printPretty .}}")]
        format: String,
    },
}

/// `regsync plugin …`.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Publish a component as a Wasm OCI artifact (registry or ocidir://);
    /// with -c, the config's creds are used
    Push {
        /// The component (`.wasm`).
        file: std::path::PathBuf,
        /// Where to push it (`registry/repo:tag` or `ocidir://dir:tag`).
        reference: String,
    },
    /// Show a component's kinds, WIT version, exports, imports and size
    Inspect {
        /// A `.wasm` file or an OCI reference.
        source: String,
    },
    /// Run one call of a component under the same sandbox and limits as a sync
    Call {
        /// A `.wasm` file or an OCI reference.
        source: String,
        /// A setting the plugin reads (`key=value`, repeatable); its `config:` in the YAML
        #[arg(long = "set", value_name = "KEY=VALUE")]
        settings: Vec<String>,
        /// A host:port a notifier may POST to (repeatable)
        #[arg(long = "allow-host")]
        allow_hosts: Vec<String>,
        /// Deadline of the call (Go duration)
        #[arg(long, default_value = "1s")]
        timeout: String,
        /// Memory limit, MiB
        #[arg(long, default_value_t = 64)]
        memory: i64,
        /// The call.
        #[command(subcommand)]
        call: PluginCall,
    },
}

/// The calls `regsync plugin call` makes.
#[derive(Debug, Subcommand)]
pub enum PluginCall {
    /// Ask a tag filter which tags to keep: `filter-tags --repo R -- TAG…`
    FilterTags {
        /// The repository the tags are from.
        #[arg(long, default_value = "")]
        repo: String,
        /// The tags offered.
        #[arg(last = true)]
        tags: Vec<String>,
    },
    /// Call a template function: `function NAME ARG…`
    Function {
        /// The function.
        name: String,
        /// Its arguments.
        args: Vec<String>,
    },
    /// Deliver one event to a notifier, given as JSON (`{"kind": "image-copied", …}`)
    Notify {
        /// The event.
        event: String,
    },
    /// Ask a gate for its decision on an image described as JSON; prints
    /// `allow` or `deny: REASON`
    Gate {
        /// The image's facts (`{"source": …, "created": …, "referrers": […]}`), as the WIT's image-facts
        #[arg(long)]
        facts: String,
        /// What `read-referrer` returns: `DIGEST=FILE` for a referrer's
        /// manifest, `DIGEST/N=FILE` for its layer N (repeatable)
        #[arg(long = "referrer", value_name = "DIGEST[/LAYER]=FILE")]
        referrers: Vec<String>,
    },
}

fn parse_grace(s: &str) -> Result<std::time::Duration, String> {
    let d = crate::duration::GoDuration::parse(s).map_err(|e| e.to_string())?;
    if d.is_negative() {
        return Err("the grace period must not be negative".into());
    }
    Ok(d.to_std())
}

/// How `once` and `check` print their report on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A line per step (`once`) or per stale image (`check`), and a total.
    Text,
    /// One JSON document with the totals, every step and every image.
    Json,
}

impl Command {
    /// True for commands that read a config file.
    pub fn needs_config(&self) -> bool {
        !matches!(self, Command::Version { .. } | Command::Completion { .. } | Command::Plugin { .. })
    }
}
