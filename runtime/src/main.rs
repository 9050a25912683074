//! The `regsync` binary: parse the command line, set up logging, load the
//! config and hand over to the library. `anyhow` lives only here.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use regsync::cli::{Cli, Command};
use regsync::config::{self, Loaded};
use regsync::logging::{self, LogFormat};
use regsync::template::TemplateEngine;
use regsync::version::VersionInfo;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help: regsync prints help to stdout and succeeds.
            print!("{e}");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => bail!("{}", e.render().to_string().trim_end()),
    };
    // Verbosity is checked before the config flag, as cobra's pre-run does (CLI-9).
    let level = logging::parse_verbosity(&cli.verbosity)?;
    let json = cli.logopt.iter().any(|o| o == "json");
    logging::init(
        level,
        if json {
            LogFormat::Json
        } else {
            LogFormat::Text
        },
    );
    for opt in cli.logopt.iter().filter(|o| o.as_str() != "json") {
        tracing::warn!(logopt = opt.as_str(), "Unknown log option ignored");
    }
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        print!("{}", Cli::command().render_help());
        return Ok(ExitCode::SUCCESS);
    };
    let engine = TemplateEngine::default();
    let loaded = if command.needs_config() {
        Some(load(&cli.config, &engine)?)
    } else {
        None
    };
    match command {
        Command::Version { format } => {
            let out =
                engine.render("version", &format, &VersionInfo::current().template_value())?;
            std::io::stdout().write_all(out.as_bytes())?;
        }
        Command::Config => {
            let loaded = loaded.context("config was not loaded")?;
            print!("{}", config::to_yaml(&loaded.config));
        }
        Command::Once { .. } | Command::Check { .. } | Command::Server { .. } => {
            bail!(
                "the sync engine is not implemented yet: the config is valid, but nothing was copied"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load(path: &Option<String>, engine: &TemplateEngine) -> anyhow::Result<Loaded> {
    let path = match path.as_deref() {
        None => bail!("required flag(s) \"config\" not set"),
        Some("") => bail!("required input missing: --config"),
        Some(p) => p,
    };
    let loaded = config::load_path(path, engine)?;
    let origin = if path == "-" { config::STDIN } else { path };
    for w in &loaded.warnings {
        tracing::warn!("{}", w.render(origin));
    }
    Ok(loaded)
}
