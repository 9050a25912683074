//! Problems found while loading a config: each names the file, the YAML
//! position, the step (index and source) when inside `sync:`, and the key path.

use std::fmt;

use super::yaml::Pos;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Loading continues; the user should look (unknown key, quirk kept).
    Warning,
    /// The config is rejected.
    Error,
}

/// The sync step a problem belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepId {
    /// Zero-based index in `sync:`.
    pub index: usize,
    /// The step's `source` as written.
    pub source: String,
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Where in the YAML.
    pub pos: Pos,
    /// The step, for problems inside `sync:`.
    pub step: Option<StepId>,
    /// Key path from the root, e.g. `sync[2].tags.allow[0]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Diagnostic {
    /// Renders the problem for a config read from `origin`:
    /// `regsync.yml:14:7: sync[1] (source "alpine") tags.allow[0]: invalid allow pattern …`.
    pub fn render(&self, origin: &str) -> String {
        let mut location = self.path.clone();
        if let Some(step) = &self.step {
            let prefix = format!("sync[{}]", step.index);
            let rest = self.path.strip_prefix(&prefix).unwrap_or(&self.path);
            let rest = rest.strip_prefix('.').unwrap_or(rest);
            let label = if step.source.is_empty() {
                format!("{prefix} (no source)")
            } else {
                format!("{prefix} (source \"{}\")", step.source)
            };
            location = if rest.is_empty() { label } else { format!("{label} {rest}") };
        }
        let head = format!("{origin}:{}:{}", self.pos.line, self.pos.col);
        if location.is_empty() {
            format!("{head}: {}", self.message)
        } else {
            format!("{head}: {location}: {}", self.message)
        }
    }
}

/// Collects problems while a config is decoded and compiled.
#[derive(Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    step: Option<StepId>,
}

impl Diagnostics {
    /// Problems reported from now on belong to this step (or to none).
    pub fn set_step(&mut self, step: Option<StepId>) {
        self.step = step;
    }

    /// Records an error.
    pub fn error(&mut self, pos: Pos, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, pos, path.into(), message.into());
    }

    /// Records a warning.
    pub fn warn(&mut self, pos: Pos, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, pos, path.into(), message.into());
    }

    fn push(&mut self, severity: Severity, pos: Pos, path: String, message: String) {
        self.items.push(Diagnostic { severity, pos, step: self.step.clone(), path, message });
    }

    /// Adds problems found outside the config (plugins that failed to load).
    pub fn extend(&mut self, problems: Vec<Diagnostic>) {
        self.items.extend(problems);
    }

    /// How many errors were recorded so far.
    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.severity == Severity::Error).count()
    }

    /// True when any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// Everything recorded, in file order (stable for equal positions).
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| d.pos);
        self.items
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("failed to read config {origin}: {source}")]
    Read {
        /// File name or `<stdin>`.
        origin: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The config has errors; all of them are listed.
    #[error("{}", RenderErrors { origin, diagnostics })]
    Invalid {
        /// File name or `<stdin>`.
        origin: String,
        /// Every problem found (warnings included, errors first when rendered).
        diagnostics: Vec<Diagnostic>,
    },
}

struct RenderErrors<'a> {
    origin: &'a str,
    diagnostics: &'a [Diagnostic],
}

impl fmt::Display for RenderErrors<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<&Diagnostic> = self.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
        let noun = if errors.len() == 1 { "error" } else { "errors" };
        write!(f, "invalid config {}: {} {noun}", self.origin, errors.len())?;
        for d in errors {
            write!(f, "\n  {}", d.render(self.origin))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_step_and_position() {
        let d = Diagnostic {
            severity: Severity::Error,
            pos: Pos { line: 14, col: 7 },
            step: Some(StepId { index: 1, source: "alpine".into() }),
            path: "sync[1].tags.allow[0]".into(),
            message: "invalid allow pattern \"(\"".into(),
        };
        assert_eq!(
            d.render("regsync.yml"),
            "regsync.yml:14:7: sync[1] (source \"alpine\") tags.allow[0]: invalid allow pattern \"(\""
        );
        let whole_step = Diagnostic { path: "sync[1]".into(), ..d.clone() };
        assert_eq!(whole_step.render("c.yml"), "c.yml:14:7: sync[1] (source \"alpine\"): invalid allow pattern \"(\"");
        let top = Diagnostic { step: None, path: "version".into(), ..d };
        assert_eq!(top.render("c.yml"), "c.yml:14:7: version: invalid allow pattern \"(\"");
    }
}
