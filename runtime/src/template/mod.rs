//! Go `text/template` values in configs (TPL-1 … TPL-9), on top of `gotmpl`.
//!
//! [`Templates`] owns the function table: regclient's functions, Go's
//! built-ins, and whatever a [`FunctionProvider`] (a WASM plugin, later) adds.
//! Data is passed as `gotmpl::Value` maps whose keys are Go field names, so a
//! misspelt field (`.Sync.source`) is an error, as for Go structs.

mod functions;
pub(crate) mod gotime;
mod methods;

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::parse::Parser;
use gotmpl::{MissingKey, Template, Value, ValueFunc};

use crate::reference::{Reference, Scheme};

pub use gotmpl::Value as TemplateValue;

/// A template that failed to parse or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Syntax error.
    #[error("template parse error: {0}")]
    Parse(String),
    /// Error while executing (unknown field, function error, bad argument).
    #[error("template execution error: {0}")]
    Execute(String),
    /// A provider offers a function whose name is taken.
    #[error("template function \"{function}\" from {provider} is already defined by {existing}")]
    NameClash {
        /// The function name.
        function: String,
        /// Who tried to add it.
        provider: String,
        /// Who has it.
        existing: String,
    },
}

/// A source of extra template functions, such as a WASM plugin.
///
/// Arguments arrive as their printed form and the result is a string, which
/// is all the plugin interface (`template-functions.call`) carries.
pub trait FunctionProvider: Send + Sync {
    /// Who provides the functions, for error messages (`plugin "x"`).
    fn provider_name(&self) -> String;
    /// The functions offered.
    fn functions(&self) -> Vec<String>;
    /// Calls one of them.
    fn call(&self, function: &str, args: &[String]) -> Result<String, String>;
}

/// The function table and entry points for rendering templates.
#[derive(Clone)]
pub struct Templates {
    funcs: Arc<BTreeMap<String, ValueFunc>>,
    owners: Arc<BTreeMap<String, String>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").field("functions", &self.funcs.keys().collect::<Vec<_>>()).finish()
    }
}

impl Default for Templates {
    fn default() -> Self {
        let funcs = functions::builtins();
        let owners = funcs.keys().map(|k| (k.clone(), "the built-in functions".to_string())).collect();
        Templates { funcs: Arc::new(funcs), owners: Arc::new(owners) }
    }
}

/// A parsed template, ready to render many times (backup names, per image).
#[derive(Clone)]
pub struct CompiledTemplate {
    name: String,
    template: Arc<Template>,
}

thread_local! {
    static SAMPLE_RUN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `check` (a render with sample data, to validate a template at load)
/// without calling provider functions: their results depend on the real
/// data, and a plugin should not fail a config over a made-up tag. Each such
/// function returns its first argument instead.
pub fn with_sample_data<T>(check: impl FnOnce() -> T) -> T {
    SAMPLE_RUN.set(true);
    let out = check();
    SAMPLE_RUN.set(false);
    out
}

impl Templates {
    /// Adds a provider's functions; a name already taken is an error.
    pub fn add_provider(&mut self, provider: Arc<dyn FunctionProvider>) -> Result<(), TemplateError> {
        let who = provider.provider_name();
        let mut funcs = (*self.funcs).clone();
        let mut owners = (*self.owners).clone();
        for name in provider.functions() {
            if let Some(existing) = owners.get(&name) {
                return Err(TemplateError::NameClash { function: name, provider: who, existing: existing.clone() });
            }
            if functions::RESERVED.contains(&name.as_str()) {
                return Err(TemplateError::NameClash {
                    function: name,
                    provider: who,
                    existing: "Go's template language".into(),
                });
            }
            let p = provider.clone();
            let fname = name.clone();
            let f: ValueFunc = Arc::new(move |args: &[Value]| {
                let args: Vec<String> = args.iter().map(display).collect();
                if SAMPLE_RUN.get() {
                    return Ok(Value::String(Arc::from(args.first().map_or("", String::as_str))));
                }
                p.call(&fname, &args).map(|s| Value::String(Arc::from(s))).map_err(gotmpl::TemplateError::Exec)
            });
            funcs.insert(name.clone(), f);
            owners.insert(name, who.clone());
        }
        self.funcs = Arc::new(funcs);
        self.owners = Arc::new(owners);
        Ok(())
    }

    /// Parses a template; method calls with arguments are rewritten (see `methods`).
    pub fn compile(&self, name: &str, source: &str) -> Result<CompiledTemplate, TemplateError> {
        let parse_err = |e: gotmpl::TemplateError| TemplateError::Parse(e.to_string());
        let (mut tree, defines) =
            Parser::with_name(Some(name), source, "{{", "}}").and_then(Parser::parse).map_err(parse_err)?;
        methods::rewrite_list(&mut tree);
        let mut template =
            Template::new(name).missing_key(MissingKey::Error).funcs((*self.funcs).clone()).add_parse_tree(name, tree);
        for mut define in defines {
            methods::rewrite_list(&mut define.body);
            template = template.add_parse_tree(define.name.as_str(), define.body);
        }
        Ok(CompiledTemplate { name: name.to_string(), template: Arc::new(template) })
    }

    /// Renders `source` with `data`; text without `{{` is returned as is.
    pub fn render(&self, name: &str, source: &str, data: &Value) -> Result<String, TemplateError> {
        if !source.contains("{{") {
            return Ok(source.to_string());
        }
        self.compile(name, source)?.render(data)
    }
}

impl CompiledTemplate {
    /// Runs the template; output past [`OUTPUT_LIMIT`] is an error.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = Capped { text: String::new(), over: false };
        match self.template.execute_template_fmt(&mut out, &self.name, data) {
            Ok(()) => Ok(out.text),
            Err(_) if out.over => {
                Err(TemplateError::Execute(format!("the output is longer than {OUTPUT_LIMIT} bytes")))
            }
            Err(e) => Err(TemplateError::Execute(clarify(e))),
        }
    }
}

/// Most text one template may produce. Every template of a config expands to
/// a reference, a tag or a short setting; this only stops a runaway one.
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// Collects template output up to [`OUTPUT_LIMIT`], then refuses more.
struct Capped {
    text: String,
    over: bool,
}

impl std::fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.text.len() + s.len() > OUTPUT_LIMIT {
            self.over = true;
            return Err(std::fmt::Error);
        }
        self.text.push_str(s);
        Ok(())
    }
}

/// gotmpl reports a missing map key; our maps stand for Go structs, so say it as Go would.
fn clarify(e: gotmpl::TemplateError) -> String {
    match e {
        gotmpl::TemplateError::MissingKey { key } => format!("can't evaluate field {key}"),
        gotmpl::TemplateError::Exec(message) => message,
        other => other.to_string(),
    }
}

/// A value as `{{.}}` would print it.
fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => other.to_string(),
    }
}

/// Builds template data maps with Go field names.
#[derive(Default)]
pub struct MapBuilder(BTreeMap<Arc<str>, Value>);

impl MapBuilder {
    /// Adds a string field.
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.0.insert(Arc::from(key), Value::String(Arc::from(value)));
        self
    }

    /// Adds any value.
    pub fn value(mut self, key: &str, value: Value) -> Self {
        self.0.insert(Arc::from(key), value);
        self
    }

    /// Adds a boolean field.
    pub fn bool(self, key: &str, value: bool) -> Self {
        self.value(key, Value::Bool(value))
    }

    /// Adds a list of strings.
    pub fn strs(self, key: &str, values: &[String]) -> Self {
        let list: Vec<Value> = values.iter().map(|s| Value::String(Arc::from(s.as_str()))).collect();
        self.value(key, Value::List(list.into()))
    }

    /// The finished map.
    pub fn build(self) -> Value {
        Value::Map(Arc::new(self.0))
    }
}

/// `.Ref` for backup templates (TPL-5): regclient's `ref.Ref` fields plus `CommonName`.
pub fn ref_value(r: &Reference) -> Value {
    let scheme = match r.scheme {
        Scheme::Registry => "reg",
        Scheme::OciDir => "ocidir",
    };
    MapBuilder::default()
        .str("Scheme", scheme)
        .str("Reference", &r.original)
        .str("Registry", &r.registry)
        .str("Repository", &r.repository)
        .str("Tag", &r.tag)
        .str("Digest", &r.digest)
        .str("Path", &r.path)
        .str("CommonName", &r.common_name())
        .build()
}

/// A map with its own `printPretty` form (as Go types with a pretty printer have).
pub fn with_pretty_form(map: Value, pretty: String) -> Value {
    match map {
        Value::Map(m) => {
            let mut m = (*m).clone();
            m.insert(Arc::from(functions::PRETTY_KEY), Value::String(Arc::from(pretty)));
            Value::Map(Arc::new(m))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests;
