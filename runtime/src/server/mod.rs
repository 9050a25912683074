//! `regsync server`: the first pass, schedules, hot reload, signals and the
//! metrics endpoint (SRV-1 … SRV-8, SIG-*, docs/decisions.md).
//!
//! Start-up is the same path as a reload from an empty config: every step
//! with a schedule or interval gets a missing-only first pass, then its own
//! scheduler task. A reload validates the new file completely, then adds,
//! restarts or stops only the steps whose processed settings changed; copies
//! in flight finish. Runs of one step never overlap. What a reload may spend
//! seconds on (compiling a plugin, a credential helper listing its hosts)
//! runs in the blocking pool; only the result is applied on the event loop,
//! so signals are answered meanwhile.

pub(crate) mod diff;
mod http;
mod page;
pub mod status;
mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::diff::StepKey;
use crate::client::Client;
use crate::config::{self, Config, SyncStep};
use crate::metrics::Metrics;
use crate::pipeline::{Mode, Pipeline, PipelineOptions};
use crate::plugin::{PluginHost, PluginSet};
use crate::schedule::Schedule;
use crate::setup::{self, Setup};

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The config file (watched for changes).
    pub config_path: String,
    /// Where `/metrics`, `/healthz` and `/readyz` are served, if anywhere.
    pub listen: Option<SocketAddr>,
    /// How long running copies may take to finish at shutdown.
    pub grace: Duration,
    /// Stop the server at the first failed run.
    pub abort_on_error: bool,
    /// User-Agent when the config sets none.
    pub user_agent: String,
    /// `--shard`: only this shard's target repositories are synced.
    pub shard: Option<crate::shard::Shard>,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The metrics address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The config file cannot be watched.
    #[error("cannot watch {path}: {reason}")]
    Watch {
        /// The file.
        path: String,
        /// The cause.
        reason: String,
    },
    /// Signal handlers could not be installed.
    #[error("cannot handle signals: {0}")]
    Signals(std::io::Error),
}

/// How a server run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// True when the last run of every step succeeded (docs/decisions.md).
    pub last_runs_ok: bool,
    /// Steps whose last run failed.
    pub failed_steps: Vec<String>,
}

/// Live state of one scheduled step.
#[derive(Default)]
pub struct StepStatus {
    running: AtomicBool,
    last_ok: Mutex<Option<bool>>,
    runs: AtomicU64,
}

/// A scheduled step: cancelling `stop` ends its schedule (a run in flight finishes).
struct StepTask {
    stop: CancellationToken,
}

/// What the HTTP endpoints read.
pub struct Shared {
    metrics: Metrics,
    ready: AtomicBool,
    status: Arc<status::Board>,
}

type SharedPipeline = Arc<RwLock<Arc<Pipeline>>>;

struct Server {
    options: ServerOptions,
    config: Config,
    plugins: PluginSet,
    host: PluginHost,
    watch: Option<watch::Watch>,
    pipeline: SharedPipeline,
    pipelines: Vec<Arc<Pipeline>>,
    tasks: HashMap<StepKey, StepTask>,
    /// Per step, kept while the step exists, across restarts of its schedule.
    statuses: HashMap<StepKey, Arc<StepStatus>>,
    tracker: TaskTracker,
    shared: Arc<Shared>,
    abort: CancellationToken,
    /// Opens when the start-up first pass is over; schedules begin after it (SRV-3).
    gate: tokio::sync::watch::Receiver<bool>,
}

/// A reload made ready off the event loop.
struct Reloaded {
    setup: Setup,
    diff: diff::ConfigDiff,
    /// A new pipeline when the client (creds, client-wide defaults) or the plugins changed.
    pipeline: Option<Arc<Pipeline>>,
}

/// Reads and loads the file (compiling changed plugins: blocking work, run in
/// the blocking pool), compares it with the config running now, and builds a
/// new pipeline if the client or the plugins changed (credential helpers run
/// as child processes with a deadline).
async fn prepare_reload(
    path: String,
    host: PluginHost,
    running: PluginSet,
    current: Config,
    options: ServerOptions,
    board: Arc<status::Board>,
) -> Result<Reloaded, config::ConfigError> {
    let load = {
        let running = running.clone();
        move || {
            let text = std::fs::read_to_string(&path)
                .map_err(|source| config::ConfigError::Read { origin: path.clone(), source })?;
            setup::load(&text, &path, &host, Some(&running))
        }
    };
    // A panic in the load fails this task like any other; the loop logs it
    // and keeps the running config.
    let setup =
        tokio::task::spawn_blocking(load).await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
    let diff = diff::diff(&current, &setup.config);
    let pipeline = if diff.client_changed || !setup.plugins.same_as(&running) {
        Some(pipeline_for(&setup.config, &setup.plugins, &options, board).await)
    } else {
        None
    };
    Ok(Reloaded { setup, diff, pipeline })
}

async fn pipeline_for(
    config: &Config,
    plugins: &PluginSet,
    options: &ServerOptions,
    board: Arc<status::Board>,
) -> Arc<Pipeline> {
    let client = Client::from_config(config, options.user_agent.clone()).await;
    let mut pipeline = Pipeline::new(
        config,
        client,
        // Metrics read the tallies; notifiers get their steps' image reports regardless.
        PipelineOptions { shard: options.shard, keep_images: false, ..PipelineOptions::default() },
    );
    // Notifier queues live as long as the pipeline; the server never exits
    // early enough to need flushing them.
    let _ = plugins.attach(&mut pipeline);
    pipeline.watch_images(board);
    Arc::new(pipeline)
}

fn plugin_files(config: &Config) -> Vec<std::path::PathBuf> {
    config.plugins.iter().map(|p| std::path::PathBuf::from(&p.path)).collect()
}

/// The schedule of a step (SRV-1): `schedule`, else `@every interval`.
fn schedule_of(step: &SyncStep) -> Option<Schedule> {
    step.compiled.schedule.clone()
}

/// One run of a step; records the outcome for metrics and the exit status.
#[allow(clippy::too_many_arguments)]
async fn run_once(
    pipeline: &SharedPipeline,
    key: &StepKey,
    step: &SyncStep,
    action: Mode,
    status: &StepStatus,
    shared: &Shared,
    abort: &CancellationToken,
    abort_on_error: bool,
) {
    let pipeline = pipeline.read().expect("pipeline lock poisoned").clone();
    let spec = &step.spec;
    tracing::debug!(source = spec.source, target = spec.target, r#type = spec.kind.as_str(), "Running task");
    // Past the grace period the pipeline is cancelled: drop the run where it stands
    // (safe, since a tag is pushed only after everything it names).
    let cancel = pipeline.cancel_token();
    shared.status.started(key);
    let report = tokio::select! {
        report = pipeline.run_step(step, action) => report,
        _ = cancel.cancelled() => return,
    };
    shared.metrics.record(&report);
    shared.status.finished(key, &report);
    status.runs.fetch_add(1, Ordering::SeqCst);
    *status.last_ok.lock().expect("poisoned") = Some(report.ok());
    if !report.ok() && abort_on_error {
        abort.cancel();
    }
}

impl Server {
    /// Starts the task of a step: a missing-only first pass (SRV-1), then, once
    /// the start-up first pass is over, its schedule. The receiver fires when
    /// the first pass is done.
    fn start_step(&mut self, key: StepKey, step: SyncStep) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let spec = &step.spec;
        let Some(schedule) = schedule_of(&step) else {
            tracing::error!(
                source = spec.source,
                target = spec.target,
                r#type = spec.kind.as_str(),
                "No schedule or interval found, ignoring"
            );
            return None;
        };
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let mut gate = self.gate.clone();
        let status = self.statuses.entry(key.clone()).or_default().clone();
        let stop = CancellationToken::new();
        let sched_text = if spec.options.schedule.is_empty() {
            format!("@every {}", spec.options.interval)
        } else {
            spec.options.schedule.clone()
        };
        tracing::debug!(
            source = spec.source,
            target = spec.target,
            r#type = spec.kind.as_str(),
            sched = sched_text,
            "Scheduled task"
        );
        if let Some(every) = schedule.period() {
            self.shared.metrics.step_interval(&spec.source, &spec.target, every);
        }
        let (pipeline, shared, tracker, abort) =
            (self.pipeline.clone(), self.shared.clone(), self.tracker.clone(), self.abort.clone());
        let abort_on_error = self.options.abort_on_error;
        let (task_step, task_status, task_stop, task_key) = (step.clone(), status.clone(), stop.clone(), key.clone());
        self.tracker.spawn(async move {
            let (step, status, stop, key) = (task_step, task_status, task_stop, task_key);
            // A first pass in flight finishes even if the step is stopped meanwhile
            // (reload, shutdown); only the grace period's cancel cuts it short.
            if !status.running.swap(true, Ordering::SeqCst) {
                run_once(&pipeline, &key, &step, Mode::Missing, &status, &shared, &abort, abort_on_error).await;
                status.running.store(false, Ordering::SeqCst);
            }
            let _ = done_tx.send(());
            tokio::select! {
                _ = gate.wait_for(|open| *open) => {}
                _ = stop.cancelled() => return,
            }
            let mut previous = Utc::now();
            loop {
                let now = Utc::now();
                let next = match &schedule {
                    Schedule::Every(d) => {
                        previous + chrono::Duration::from_std(*d).unwrap_or(chrono::Duration::seconds(1))
                    }
                    cron => match cron.next_after(now) {
                        Some(n) => n,
                        None => return,
                    },
                };
                shared.status.next_run(&key, Some(next));
                let wait = (next - now).to_std().unwrap_or_default();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => return,
                }
                previous = next;
                if status.running.swap(true, Ordering::SeqCst) {
                    tracing::warn!(
                        source = step.spec.source,
                        target = step.spec.target,
                        "Skipping scheduled run, the previous run is still going"
                    );
                    continue;
                }
                shared.status.next_run(&key, None);
                let (pipeline, shared, abort, status, step, key) =
                    (pipeline.clone(), shared.clone(), abort.clone(), status.clone(), step.clone(), key.clone());
                tracker.spawn(async move {
                    run_once(&pipeline, &key, &step, Mode::Copy, &status, &shared, &abort, abort_on_error).await;
                    status.running.store(false, Ordering::SeqCst);
                });
            }
        });
        self.tasks.insert(key, StepTask { stop });
        Some(done_rx)
    }

    fn stop_step(&mut self, key: &StepKey) {
        if let Some(task) = self.tasks.remove(key) {
            task.stop.cancel();
        }
    }

    /// Start-up: every scheduled step starts with its first pass, all at once;
    /// when the last one is done the server is ready and the schedules begin.
    fn start(&mut self, gate: tokio::sync::watch::Sender<bool>) {
        let keys = diff::keys(&self.config.sync);
        let steps: Vec<(StepKey, SyncStep)> = keys.into_iter().zip(self.config.sync.iter().cloned()).collect();
        let count = steps.len();
        let passes: Vec<_> = steps.into_iter().filter_map(|(key, step)| self.start_step(key, step)).collect();
        let shared = self.shared.clone();
        tokio::spawn(async move {
            for p in passes {
                let _ = p.await;
            }
            shared.ready.store(true, Ordering::SeqCst);
            let _ = gate.send(true);
            tracing::info!(steps = count, "First pass done, schedules started");
        });
    }

    /// Starts loading the file again, off the event loop;
    /// [`Server::apply`] takes the result.
    fn begin_reload(&self) -> Option<tokio::task::JoinHandle<Result<Reloaded, config::ConfigError>>> {
        let path = self.options.config_path.clone();
        if path == "-" {
            tracing::warn!("The config came from standard input and cannot be reloaded");
            return None;
        }
        let (host, plugins, current, options) =
            (self.host.clone(), self.plugins.clone(), self.config.clone(), self.options.clone());
        let board = self.shared.status.clone();
        Some(tokio::spawn(prepare_reload(path, host, plugins, current, options, board)))
    }

    /// Applies a prepared reload; an invalid file changes nothing.
    fn apply(&mut self, reloaded: Result<Reloaded, config::ConfigError>) {
        let path = &self.options.config_path;
        let Reloaded { setup, diff: mut d, pipeline } = match reloaded {
            Ok(r) => r,
            Err(e) => {
                let text = e.to_string();
                for line in text.lines() {
                    tracing::error!(error = line.trim(), "Config reload rejected");
                }
                self.shared.status.reloaded(false, text.lines().map(|l| l.trim().to_string()).collect());
                tracing::info!(applied = false, "Config reload: rejected, the previous config keeps running");
                self.shared.metrics.reload(false);
                return;
            }
        };
        for w in &setup.warnings {
            tracing::warn!("{}", w.render(path));
        }
        let Setup { config: new, plugins, .. } = setup;
        let plugins_changed = !plugins.same_as(&self.plugins);
        if !plugins.same_templates_as(&self.plugins) {
            // Compiled templates hold the functions they were built with.
            d.restart_all();
        }
        if let Some(new_pipeline) = pipeline {
            // Pipelines no run holds any more can go.
            self.pipelines.retain(|e| Arc::strong_count(e) > 1);
            self.pipelines.push(new_pipeline.clone());
            *self.pipeline.write().expect("pipeline lock poisoned") = new_pipeline;
        }
        if let Some(w) = &mut self.watch {
            w.set_plugins(&plugin_files(&new));
        }
        let new_keys = diff::keys(&new.sync);
        for key in &d.removed {
            self.stop_step(key);
            self.statuses.remove(key);
        }
        for &i in d.changed.iter().chain(&d.added) {
            self.stop_step(&new_keys[i]);
            let _ = self.start_step(new_keys[i].clone(), new.sync[i].clone());
        }
        tracing::info!(
            applied = true,
            added = d.added.len(),
            changed = d.changed.len(),
            removed = d.removed.len(),
            unchanged = d.unchanged.len(),
            client_rebuilt = d.client_changed,
            plugins_reloaded = plugins_changed,
            "Config reload: applied"
        );
        self.shared.metrics.reload(true);
        self.shared.status.set_config(&new, &plugins);
        self.shared.status.reloaded(true, Vec::new());
        self.config = new;
        self.plugins = plugins;
    }

    fn outcome(&self) -> Outcome {
        let mut failed = Vec::new();
        for (key, status) in &self.statuses {
            if *status.last_ok.lock().expect("poisoned") == Some(false) {
                failed.push(key.to_string());
            }
        }
        failed.sort();
        Outcome { last_runs_ok: failed.is_empty(), failed_steps: failed }
    }
}

/// Runs the server until a signal (or `--abort-on-error`) stops it.
pub async fn serve(setup: Setup, host: PluginHost, options: ServerOptions) -> Result<Outcome, ServerError> {
    let Setup { config, plugins, .. } = setup;
    use tokio::signal::unix::{SignalKind, signal};
    let board = Arc::new(status::Board::new(&options.config_path, options.shard));
    board.set_config(&config, &plugins);
    let shared =
        Arc::new(Shared { metrics: Metrics::new(options.shard), ready: AtomicBool::new(false), status: board.clone() });
    if let Some(addr) = options.listen {
        http::spawn(addr, shared.clone()).await.map_err(|source| ServerError::Listen { addr, source })?;
    }
    let mut sigterm = signal(SignalKind::terminate()).map_err(ServerError::Signals)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(ServerError::Signals)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(ServerError::Signals)?;
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::unbounded_channel();
    // A config read from stdin cannot be watched or re-read.
    let mut watch = if options.config_path == "-" {
        None
    } else {
        Some(
            watch::watch(&options.config_path, reload_tx)
                .map_err(|reason| ServerError::Watch { path: options.config_path.clone(), reason })?,
        )
    };

    if let Some(w) = &mut watch {
        w.set_plugins(&plugin_files(&config));
    }
    let pipeline = pipeline_for(&config, &plugins, &options, board).await;
    let (gate_tx, gate) = tokio::sync::watch::channel(false);
    let mut server = Server {
        pipeline: Arc::new(RwLock::new(pipeline.clone())),
        pipelines: vec![pipeline],
        config,
        plugins,
        host,
        watch,
        options,
        tasks: HashMap::new(),
        statuses: HashMap::new(),
        tracker: TaskTracker::new(),
        shared,
        abort: CancellationToken::new(),
        gate,
    };
    server.start(gate_tx);
    // At most one reload is prepared at a time; a change seen meanwhile
    // reloads again once it is applied.
    let mut reloading = None;
    let mut again = false;
    loop {
        tokio::select! {
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = server.abort.cancelled() => {
                tracing::error!("A run failed and --abort-on-error is set, stopping");
                break;
            }
            _ = sighup.recv() => {
                tracing::info!("SIGHUP received, reloading the config");
                if reloading.is_some() { again = true } else { reloading = server.begin_reload() }
            }
            Some(()) = reload_rx.recv() => {
                if reloading.is_some() { again = true } else { reloading = server.begin_reload() }
            }
            done = async { reloading.as_mut().expect("guarded").await }, if reloading.is_some() => {
                reloading = None;
                match done {
                    Ok(reloaded) => server.apply(reloaded),
                    Err(e) => tracing::error!(error = %e, "Config reload failed"),
                }
                if std::mem::take(&mut again) {
                    reloading = server.begin_reload();
                }
            }
        }
    }
    Ok(shutdown(server, &mut sigterm, &mut sigint).await)
}

/// Stops scheduling, lets running copies finish within the grace period,
/// then cancels them; a second signal exits at once (SIG-1, docs/decisions.md).
async fn shutdown(
    mut server: Server,
    sigterm: &mut tokio::signal::unix::Signal,
    sigint: &mut tokio::signal::unix::Signal,
) -> Outcome {
    tracing::debug!("Interrupt received, stopping");
    tracing::info!("Stopping server");
    let keys: Vec<StepKey> = server.tasks.keys().cloned().collect();
    for key in &keys {
        if let Some(task) = server.tasks.get(key) {
            task.stop.cancel();
        }
    }
    server.tracker.close();
    tracing::debug!("Waiting on running tasks");
    let grace = server.options.grace;
    tokio::select! {
        _ = server.tracker.wait() => {}
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(grace = %crate::duration::GoDuration::from(grace), "Grace period over, cancelling running copies");
            for pipeline in &server.pipelines {
                pipeline.cancel_token().cancel();
            }
            tokio::select! {
                _ = server.tracker.wait() => {}
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
        _ = sigterm.recv() => force_exit(),
        _ = sigint.recv() => force_exit(),
    }
    let outcome = server.outcome();
    server.tasks.clear();
    outcome
}

fn force_exit() -> ! {
    tracing::warn!("Second signal received, exiting now");
    std::process::exit(1)
}
