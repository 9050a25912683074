//! YAML text to a tree of nodes that remember their line, built from
//! `saphyr-parser` events. Anchors and aliases are resolved, merge keys (`<<`)
//! applied, and duplicate keys resolved last-wins (YAML-1, YAML-3, YAML-4),
//! matching the decoder regsync uses.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Where a node starts: 1-based line and column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// A YAML node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where it starts.
    pub pos: Pos,
    /// What it is.
    pub kind: Kind,
}

/// The kinds of node.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A scalar as written; `plain` is false for quoted and block scalars.
    Scalar {
        /// The text.
        text: String,
        /// True for unquoted scalars, whose type is resolved from their text.
        plain: bool,
        /// An explicit tag such as `!!str`, if any.
        tag: Option<String>,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping: keys in first-seen order, each once.
    Map(Vec<(Node, Node)>),
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub pos: Pos,
    /// What it found.
    pub message: String,
}

impl Node {
    /// A plain null scalar is YAML's "nothing": `~`, `null`, or an empty value.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar { text, plain: true, tag: None }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// The scalar text, if this is a scalar.
    pub fn scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A short description for type errors.
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Seq(_) => "a sequence",
            Kind::Map(_) => "a mapping",
            Kind::Scalar { .. } if self.is_null() => "null",
            Kind::Scalar { plain: true, text, tag: None } => match resolve_plain(text) {
                Plain::Bool(_) => "a boolean",
                Plain::Int(_) => "an integer",
                Plain::Float => "a number",
                Plain::Str => "a string",
            },
            Kind::Scalar { .. } => "a string",
        }
    }
}

/// The core-schema type of a plain scalar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plain {
    /// `true`/`false` in any of YAML's spellings.
    Bool(bool),
    /// A decimal, `0x` or `0o` integer.
    Int(i64),
    /// A float, `.inf` or `.nan`.
    Float,
    /// Anything else.
    Str,
}

/// Resolves a plain scalar's type by YAML 1.2 core-schema rules.
pub fn resolve_plain(text: &str) -> Plain {
    match text {
        "true" | "True" | "TRUE" => return Plain::Bool(true),
        "false" | "False" | "FALSE" => return Plain::Bool(false),
        _ => {}
    }
    let (sign, digits) = match text.strip_prefix('-') {
        Some(d) => (-1i64, d),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let int = if let Some(hex) = digits.strip_prefix("0x") {
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = digits.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<i64>().ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Plain::Int(sign * i);
    }
    let lower = digits.to_ascii_lowercase();
    if matches!(lower.as_str(), ".inf" | ".nan")
        || (digits.bytes().any(|b| b.is_ascii_digit())
            && digits.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
            && digits.parse::<f64>().is_ok())
    {
        return Plain::Float;
    }
    Plain::Str
}

fn pos_of(span: &Span) -> Pos {
    Pos { line: span.start.line(), col: span.start.col() + 1 }
}

/// Parses the first document of `text`; an empty stream gives `None`.
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder { anchors: HashMap::new(), parser: Parser::new_from_str(text) };
    loop {
        match builder.next()? {
            (Event::StreamEnd, _) => return Ok(None),
            (Event::DocumentStart(_), _) => break,
            _ => {}
        }
    }
    let (event, span) = builder.next()?;
    if matches!(event, Event::DocumentEnd) {
        return Ok(None);
    }
    builder.node(event, span).map(Some)
}

struct Builder<'a> {
    anchors: HashMap<usize, Node>,
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), SyntaxError> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(SyntaxError {
                pos: Pos { line: e.marker().line(), col: e.marker().col() + 1 },
                message: e.info().to_string(),
            }),
            None => Ok((Event::StreamEnd, Span::default())),
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span) -> Result<Node, SyntaxError> {
        let pos = pos_of(&span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let node = Node {
                    pos,
                    kind: Kind::Scalar {
                        text: text.into_owned(),
                        plain: matches!(style, ScalarStyle::Plain),
                        tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                    },
                };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::Alias(id) => {
                let mut node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| SyntaxError { pos, message: "unknown anchor".into() })?;
                node.pos = pos;
                Ok(node)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev, sp)?);
                }
                let node = Node { pos, kind: Kind::Seq(items) };
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries = Vec::new();
                loop {
                    let (ev, sp) = self.next()?;
                    if matches!(ev, Event::MappingEnd) {
                        break;
                    }
                    let key = self.node(ev, sp)?;
                    let (ev, sp) = self.next()?;
                    let value = self.node(ev, sp)?;
                    entries.push((key, value));
                }
                let node = Node { pos, kind: Kind::Map(merge_and_dedup(entries)) };
                self.remember(anchor, &node);
                Ok(node)
            }
            other => Err(SyntaxError { pos, message: format!("unexpected YAML event {other:?}") }),
        }
    }
}

fn is_merge_key(key: &Node) -> bool {
    matches!(&key.kind, Kind::Scalar { text, plain: true, .. } if text == "<<")
}

fn key_text(key: &Node) -> Option<&str> {
    key.scalar()
}

/// Applies `<<` merges and makes keys unique. Explicit keys win over merged
/// ones; among explicit keys the last wins; among merged maps the first wins.
fn merge_and_dedup(entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    let mut out: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
    let mut merged: Vec<Node> = Vec::new();
    for (key, value) in entries {
        if is_merge_key(&key) {
            match value.kind {
                Kind::Seq(items) => merged.extend(items),
                _ => merged.push(value),
            }
            continue;
        }
        match out.iter_mut().find(|(k, _)| key_text(k).is_some() && key_text(k) == key_text(&key)) {
            Some(slot) => *slot = (key, value),
            None => out.push((key, value)),
        }
    }
    for source in merged {
        if let Kind::Map(source_entries) = source.kind {
            for (key, value) in source_entries {
                if !out.iter().any(|(k, _)| key_text(k) == key_text(&key)) {
                    out.push((key, value));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_get<'a>(node: &'a Node, key: &str) -> Option<&'a Node> {
        match &node.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k.scalar() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    #[test]
    fn empty_documents_yaml_1() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# only a comment\n").unwrap(), None);
    }

    #[test]
    fn merge_keys_and_overrides_yaml_3() {
        let doc = "base: &b\n  type: image\n  interval: 1h\nentry:\n  <<: *b\n  type: repository\n";
        let root = parse(doc).unwrap().unwrap();
        let entry = map_get(&root, "entry").unwrap();
        assert_eq!(map_get(entry, "type").unwrap().scalar(), Some("repository"));
        assert_eq!(map_get(entry, "interval").unwrap().scalar(), Some("1h"));
    }

    #[test]
    fn merge_list_first_map_wins() {
        let doc = "a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n";
        let root = parse(doc).unwrap().unwrap();
        let c = map_get(&root, "c").unwrap();
        assert_eq!(map_get(c, "x").unwrap().scalar(), Some("1"));
        assert_eq!(map_get(c, "y").unwrap().scalar(), Some("2"));
    }

    #[test]
    fn duplicate_keys_last_wins_yaml_4() {
        let root = parse("a: 1\nb: 2\na: 3\n").unwrap().unwrap();
        let Kind::Map(entries) = &root.kind else { panic!() };
        assert_eq!(entries.len(), 2);
        let a = map_get(&root, "a").unwrap();
        assert_eq!(a.scalar(), Some("3"));
        assert_eq!(a.pos.line, 3);
    }

    #[test]
    fn aliases_keep_their_own_position() {
        let root = parse("x: &s \"15 3 * * *\"\ny:\n  - *s\n").unwrap().unwrap();
        let Kind::Seq(items) = &map_get(&root, "y").unwrap().kind else { panic!() };
        assert_eq!(items[0].scalar(), Some("15 3 * * *"));
        assert_eq!(items[0].pos.line, 3);
    }

    #[test]
    fn plain_scalar_types() {
        assert_eq!(resolve_plain("3"), Plain::Int(3));
        assert_eq!(resolve_plain("-0x10"), Plain::Int(-16));
        assert_eq!(resolve_plain("3.10"), Plain::Float);
        assert_eq!(resolve_plain("1e3"), Plain::Float);
        assert_eq!(resolve_plain(".inf"), Plain::Float);
        assert_eq!(resolve_plain("True"), Plain::Bool(true));
        assert_eq!(resolve_plain("yes"), Plain::Str);
        assert_eq!(resolve_plain("1h"), Plain::Str);
        assert_eq!(resolve_plain("1.2.3"), Plain::Str);
        assert_eq!(resolve_plain("e"), Plain::Str);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.line >= 1, "{err:?}");
        assert!(!err.message.is_empty());
    }
}
