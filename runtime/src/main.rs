//! The `regsync` binary: parse the command line, set up logging, load the
//! config and hand over to the library. `anyhow` lives only here.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use regsync::cli::{Cli, Command, OutputFormat, PluginCall, PluginCommand};
use regsync::client::Client;
use regsync::config;
use regsync::logging::{self, LogFormat};
use regsync::pipeline::{Mode, Pipeline, PipelineOptions, report};
use regsync::plugin::{self, PluginHost};
use regsync::progress;
use regsync::server;
use regsync::setup::{self, Setup};
use regsync::shard::Shard;
use regsync::template::Templates;
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
    logging::init(level, if json { LogFormat::Json } else { LogFormat::Text });
    for opt in cli.logopt.iter().filter(|o| o.as_str() != "json") {
        tracing::warn!(logopt = opt.as_str(), "Unknown log option ignored");
    }
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        print!("{}", Cli::command().render_help());
        return Ok(ExitCode::SUCCESS);
    };
    // A bad shard setting fails before anything is loaded or synced.
    let shard = match &command {
        Command::Once { run, .. } | Command::Check { run, .. } | Command::Server { run, .. } => {
            Shard::resolve(run.shard.as_deref(), |k| std::env::var(k).ok())?
        }
        _ => None,
    };
    if let Some(s) = shard {
        tracing::info!(shard = %s, "Running as one shard of the work");
    }
    let templates = Templates::default();
    let host = PluginHost::new(plugin::default_cache_dir());
    let loaded = if command.needs_config() { Some(load(&cli.config, &host)?) } else { None };
    match command {
        Command::Version { format } => {
            let out = templates.render("version", &format, &VersionInfo::current().template_value())?;
            std::io::stdout().write_all(out.as_bytes())?;
        }
        Command::Plugin { action: PluginCommand::Push { file, reference } } => {
            plugin_push(cli.config.as_deref(), &host, &file, &reference)?;
        }
        Command::Plugin { action: PluginCommand::Inspect { source } } => {
            let registry = registry_settings(cli.config.as_deref())?;
            print!("{}", plugin::harness::inspect(&host, &source, &registry)?);
        }
        Command::Plugin { action: PluginCommand::Call { source, settings, allow_hosts, timeout, memory, call } } => {
            let registry = registry_settings(cli.config.as_deref())?;
            let mut target = plugin::harness::Target::file(&source);
            for kv in settings {
                let (k, v) = kv.split_once('=').with_context(|| format!("--set {kv}: expected KEY=VALUE"))?;
                target.settings.insert(k.to_string(), v.to_string());
            }
            target.allow_hosts = allow_hosts;
            target.timeout =
                regsync::duration::GoDuration::parse(&timeout).map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
            target.memory = memory;
            let call = match call {
                PluginCall::FilterTags { repo, tags } => plugin::harness::Call::FilterTags { repo, tags },
                PluginCall::Function { name, args } => plugin::harness::Call::Function { name, args },
                PluginCall::Notify { event } => plugin::harness::Call::Notify { event_json: event },
                PluginCall::Gate { facts, referrers } => {
                    let mut files = std::collections::BTreeMap::new();
                    for r in referrers {
                        let (k, v) = r
                            .split_once('=')
                            .with_context(|| format!("--referrer {r}: expected DIGEST[/LAYER]=FILE"))?;
                        let bytes = std::fs::read(v).with_context(|| format!("--referrer {r}"))?;
                        files.insert(k.to_string(), bytes);
                    }
                    plugin::harness::Call::Gate { facts_json: facts, referrers: files }
                }
            };
            // As in a sync: calls run on a blocking thread of a runtime, which
            // a notifier's outbound HTTP uses.
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let out = runtime.block_on(async move {
                tokio::task::spawn_blocking(move || plugin::harness::call(&host, &target, &call, &registry)).await
            })??;
            print!("{out}");
        }
        Command::Completion { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "regsync", &mut std::io::stdout());
        }
        Command::Config => {
            let loaded = loaded.context("config was not loaded")?;
            print!("{}", config::to_yaml(&loaded.config));
        }
        Command::Once { run, missing, format } => {
            let loaded = loaded.context("config was not loaded")?;
            let action = if missing { Mode::Missing } else { Mode::Copy };
            let progress = !json && progress::wanted();
            return sync(&loaded, action, run.abort_on_error, shard, format, progress);
        }
        Command::Check { run, format } => {
            let loaded = loaded.context("config was not loaded")?;
            return sync(&loaded, Mode::Check, run.abort_on_error, shard, format, false);
        }
        Command::Server { run, listen, grace } => {
            let loaded = loaded.context("config was not loaded")?;
            let options = server::ServerOptions {
                config_path: cli.config.clone().unwrap_or_default(),
                listen,
                grace,
                abort_on_error: run.abort_on_error,
                user_agent: VersionInfo::current().user_agent(),
                shard,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let outcome = runtime.block_on(server::serve(loaded, host, options));
            // Whatever is still running was cancelled; do not wait on it.
            runtime.shutdown_timeout(std::time::Duration::from_millis(500));
            let outcome = outcome?;
            if !outcome.last_runs_ok {
                bail!("the last run of these steps failed: {}", outcome.failed_steps.join(", "));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs every step once and prints what happened; errors give exit code 1
/// (CLI-11). `progress` draws live progress on stderr while it runs.
fn sync(
    setup: &Setup,
    action: Mode,
    abort_on_error: bool,
    shard: Option<Shard>,
    format: OutputFormat,
    progress: bool,
) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let config = &setup.config;
    let display = progress.then(progress::Display::start);
    let reports = runtime.block_on(async {
        let mut client = Client::from_config(config, VersionInfo::current().user_agent()).await;
        if let Some(d) = &display {
            client.watch_transfers(std::sync::Arc::new(d.clone()));
        }
        // The JSON document lists every image; the text summary needs only counts.
        let keep_images = format == OutputFormat::Json;
        let mut pipeline = Pipeline::new(
            config,
            client,
            PipelineOptions { abort_on_error, shard, keep_images, ..PipelineOptions::default() },
        );
        if let Some(d) = &display {
            pipeline.watch_images(std::sync::Arc::new(d.clone()));
        }
        let notifiers = setup.plugins.attach(&mut pipeline);
        let cancel = pipeline.cancel_token();
        let stopping = cancel.clone();
        let mut stop = stop_signals()?;
        tokio::spawn(async move {
            if stop.recv().await.is_some() {
                tracing::debug!("Interrupt received, stopping");
                cancel.cancel();
                stop_deadline();
                // A second signal does not wait for anything.
                if stop.recv().await.is_some() {
                    tracing::warn!("Second interrupt, exiting now");
                    std::process::exit(1);
                }
            }
        });
        let reports = pipeline.run(&config.sync, action).await;
        let flush = if stopping.is_cancelled() { NOTIFY_FLUSH_STOPPING } else { NOTIFY_FLUSH };
        for n in &notifiers {
            n.flush(flush).await;
        }
        Ok::<_, anyhow::Error>(reports)
    })?;
    // The bars go before the summary so the terminal keeps only the summary.
    if let Some(d) = display {
        d.finish();
    }
    let check = action == Mode::Check;
    match format {
        OutputFormat::Json => {
            let command = if check { "check" } else { "once" };
            let mut doc = report::RunReport::new(command, &reports, started.elapsed());
            doc.shard = shard.map(|s| s.to_string());
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        OutputFormat::Text => print!("{}", report::summary(&reports, check)),
    }
    // Each failure was logged where it happened and is counted in the summary;
    // the exit code says the run failed (CLI-11) without repeating them.
    if reports.iter().any(|r| !r.ok()) {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGINT or SIGTERM, each time one comes (SIG-1): a Kubernetes CronJob or
/// `timeout` stops `once` and `check` with SIGTERM.
fn stop_signals() -> anyhow::Result<tokio::sync::mpsc::Receiver<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// How long `once` and `check` may take to wind down after a signal.
const STOP_DEADLINE: std::time::Duration = std::time::Duration::from_secs(4);

/// Ends the process [`STOP_DEADLINE`] after a signal if the run has not
/// ended by itself. A thread of its own, so that nothing the async runtime is
/// busy with (a long parse, a stalled write) can hold it up. Whatever a copy
/// wrote is complete: tags are pushed last and layouts are written atomically.
fn stop_deadline() {
    std::thread::spawn(|| {
        std::thread::sleep(STOP_DEADLINE);
        tracing::error!(deadline = ?STOP_DEADLINE, "The run did not stop in time after the signal, exiting");
        std::process::exit(1);
    });
}

/// `regsync plugin push`: the component described from its own interfaces,
/// published with the config's registry settings (or the defaults).
fn plugin_push(config: Option<&str>, host: &PluginHost, file: &std::path::Path, reference: &str) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let info = host.describe(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let Some(world) = info.world() else {
        bail!("{} exports no regsync plugin interface (exports: {})", file.display(), info.exports.join(", "));
    };
    let settings = registry_settings(config)?;
    let layer = format!("sha256:{}", sha256_hex(&bytes));
    let doc = plugin::oci::artifact_config(&layer, &info.exports, &info.imports, &world);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let digest = runtime.block_on(async {
        let client = Client::from_config(&settings, VersionInfo::current().user_agent()).await;
        plugin::oci::push(&client, reference, &bytes, &doc).await
    })?;
    println!("{}", plugin::oci::pinned(reference, &digest));
    Ok(())
}

/// The registry settings of `-c` (its creds and defaults), or the defaults.
fn registry_settings(config: Option<&str>) -> anyhow::Result<config::Config> {
    Ok(match config {
        Some(path) => {
            let (origin, text) = config::read(path)?;
            config::Document::parse(&text, &origin)?.registry_config()
        }
        None => config::Document::parse("{}", "defaults")?.registry_config(),
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// How long `once` waits for notifiers to deliver their last events.
const NOTIFY_FLUSH: std::time::Duration = std::time::Duration::from_secs(30);
/// The same after a signal: within the stop deadline.
const NOTIFY_FLUSH_STOPPING: std::time::Duration = std::time::Duration::from_secs(2);

fn load(path: &Option<String>, host: &PluginHost) -> anyhow::Result<Setup> {
    let path = match path.as_deref() {
        None => bail!("required flag(s) \"config\" not set"),
        Some("") => bail!("required input missing: --config"),
        Some(p) => p,
    };
    let (origin, text) = config::read(path)?;
    let setup = setup::load(&text, &origin, host, None)?;
    for w in &setup.warnings {
        tracing::warn!("{}", w.render(&origin));
    }
    Ok(setup)
}
