//! allow/deny patterns: Go RE2 syntax compiled with Rust's `regex`, anchored as
//! `^(?:pattern)$` (docs/decisions.md, FILT-1) and with Go's ASCII-only Perl classes.

use regex::Regex;

/// Compiles one allow or deny pattern so it must match the whole name.
/// The error is one line about the pattern as the user wrote it.
pub fn compile_anchored(pattern: &str) -> Result<Regex, String> {
    // Checking the pattern as written first keeps our rewrite out of error messages.
    Regex::new(pattern).map_err(|e| one_line(&e))?;
    Regex::new(&format!("^(?:{})$", ascii_perl_classes(pattern))).map_err(|e| one_line(&e))
}

/// `regex` errors draw the pattern with a caret over several lines; keep the reason.
fn one_line(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map_or_else(|| text.lines().last().unwrap_or_default().trim().to_string(), str::to_string)
}

/// Rewrites `\d \w \s` (and their negations) to the ASCII sets Go's RE2 uses;
/// Rust's are Unicode-aware, so `\d` would otherwise match `٣`.
fn ascii_perl_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut class_depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else {
                    out.push('\\');
                    break;
                };
                let (inside, outside) = match next {
                    'd' => ("0-9", "[0-9]"),
                    'D' => ("[^0-9]", "[^0-9]"),
                    'w' => ("0-9A-Za-z_", "[0-9A-Za-z_]"),
                    'W' => ("[^0-9A-Za-z_]", "[^0-9A-Za-z_]"),
                    's' => (r"\t\n\x0C\r ", r"[\t\n\x0C\r ]"),
                    'S' => (r"[^\t\n\x0C\r ]", r"[^\t\n\x0C\r ]"),
                    'b' if class_depth == 0 => ("", r"(?-u:\b)"),
                    'B' if class_depth == 0 => ("", r"(?-u:\B)"),
                    other => {
                        out.push('\\');
                        out.push(other);
                        continue;
                    }
                };
                out.push_str(if class_depth > 0 { inside } else { outside });
            }
            '[' => {
                class_depth += 1;
                out.push('[');
                // A `]` right after `[` or `[^` is a literal, not the end of the class.
                if chars.peek() == Some(&'^') {
                    out.push(chars.next().unwrap());
                }
                if chars.peek() == Some(&']') {
                    out.push(chars.next().unwrap());
                }
                // POSIX classes like `[:alpha:]` nest a `[` that is not a new class.
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(']');
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, input: &str) -> bool {
        compile_anchored(pattern).unwrap().is_match(input)
    }

    #[test]
    fn alternation_is_anchored_as_a_group_filt_1() {
        // regsync concatenates `^a|b$`, which matches `ax` and `xb`; we anchor the group.
        assert!(matches("a|b", "a"));
        assert!(matches("a|b", "b"));
        assert!(!matches("a|b", "ax"));
        assert!(!matches("a|b", "xb"));
        assert!(!matches("3", "3.1"));
        assert!(matches(r"3.\d+", "3.19"));
        assert!(!matches(r"3.\d+", "3.19-rc"));
    }

    #[test]
    fn perl_classes_are_ascii_filt_1() {
        assert!(matches(r"\d+", "123"));
        assert!(!matches(r"\d+", "١٢٣"));
        assert!(!matches(r"\w+", "é"));
        assert!(matches(r"\w+", "a_Z9"));
        assert!(matches(r"[\d.]+", "1.2"));
        assert!(!matches(r"[\d.]+", "1.٢"));
        assert!(matches(r"[^\d]+", "abc"));
        assert!(matches(r"[\D]+", "abc"));
        assert!(matches(r"a\sb", "a b"));
        assert!(!matches(r"a\sb", "a\u{2003}b"));
        assert!(matches(r"\bv1", "v1"));
        assert!(matches(r"[]a]+", "]a"));
        assert!(matches(r"[[:digit:]]+", "42"));
        assert!(matches(r"a\.b", "a.b"));
        assert!(!matches(r"a\.b", "axb"));
    }

    #[test]
    fn invalid_pattern_is_a_one_line_error_filt_2() {
        assert_eq!(compile_anchored(r"3.(\d+").unwrap_err(), "unclosed group");
        assert_eq!(compile_anchored("[a-").unwrap_err(), "unclosed character class");
    }
}
