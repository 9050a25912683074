//! Live progress of `once` on a terminal: images done of those found, bytes
//! sent with their rate, and a bar for each large blob in flight. It is drawn
//! on stderr only when stderr is a terminal and logs are text; log lines go
//! through [`LogWriter`], which lifts the bars while a line is written so the
//! two never tear each other.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::client::{BlobProgress, Descriptor, TransferWatch};
use crate::pipeline::{ImageReport, ImageWatch};

/// Blobs smaller than this get no bar of their own: they come and go too fast to read.
const LARGE_BLOB: u64 = 4 << 20;
/// At most this many blob bars at once; more parallel transfers share the totals line.
const MAX_BLOB_BARS: usize = 3;

/// The bars being drawn, if any, so log lines can step around them.
static ACTIVE: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// True when progress can be drawn: stderr is a terminal that is not `dumb`.
pub fn wanted() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

/// The progress display of one run; clones share it.
#[derive(Clone)]
pub struct Display {
    multi: MultiProgress,
    images: ProgressBar,
    bytes: ProgressBar,
    blob_bars: Arc<AtomicUsize>,
}

impl Display {
    /// Starts drawing on stderr.
    pub fn start() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let images =
            multi.add(ProgressBar::new(0).with_style(style("{spinner} [{elapsed_precise}] images {pos}/{len}")));
        let bytes = multi.add(ProgressBar::new(0).with_style(style("  sent {binary_bytes} at {binary_bytes_per_sec}")));
        images.enable_steady_tick(Duration::from_millis(100));
        *ACTIVE.lock().expect("poisoned") = Some(multi.clone());
        Display { multi, images, bytes, blob_bars: Arc::default() }
    }

    /// Stops drawing and erases the bars, leaving the terminal to the summary.
    pub fn finish(self) {
        *ACTIVE.lock().expect("poisoned") = None;
        self.images.finish_and_clear();
        self.bytes.finish_and_clear();
        let _ = self.multi.clear();
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).expect("progress templates are fixed and valid")
}

impl ImageWatch for Display {
    fn images_found(&self, _step: usize, n: usize) {
        self.images.inc_length(n as u64);
    }

    fn image_done(&self, _step: usize, _image: &ImageReport) {
        self.images.inc(1);
    }
}

impl TransferWatch for Display {
    fn blob_started(&self, desc: &Descriptor) -> Arc<dyn BlobProgress> {
        let bar =
            (desc.size >= LARGE_BLOB && self.blob_bars.fetch_add(1, Ordering::Relaxed) < MAX_BLOB_BARS).then(|| {
                let short: String = desc.digest.chars().take(19).collect();
                let bar = ProgressBar::new(desc.size)
                    .with_style(style("  {msg} [{bar:30}] {binary_bytes}/{binary_total_bytes}").progress_chars("=> "))
                    .with_message(short);
                self.multi.add(bar)
            });
        if bar.is_none() && desc.size >= LARGE_BLOB {
            self.blob_bars.fetch_sub(1, Ordering::Relaxed);
        }
        Arc::new(BlobBar { bar, total: self.bytes.clone(), multi: self.multi.clone(), shown: self.blob_bars.clone() })
    }
}

/// One blob transfer: advances the totals line and its own bar, if it has one.
struct BlobBar {
    bar: Option<ProgressBar>,
    total: ProgressBar,
    multi: MultiProgress,
    shown: Arc<AtomicUsize>,
}

impl BlobProgress for BlobBar {
    fn advance(&self, n: u64) {
        self.total.inc(n);
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }
}

impl Drop for BlobBar {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
            self.multi.remove(&b);
            self.shown.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Where log lines go: stderr, with the bars lifted while a line is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let active = ACTIVE.lock().expect("poisoned").clone();
        match active {
            Some(multi) => multi.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}
