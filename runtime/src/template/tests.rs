//! Template tests: every regclient function, Go built-ins, methods, errors.

use super::*;
use chrono::Datelike;

fn sync_data() -> Value {
    let sync = MapBuilder::default()
        .str("Source", "gcr.io/example/repo")
        .str("Target", "registry:5000/x")
        .str("Type", "repository")
        .str("Interval", "1h0m0s")
        .bool("Referrers", false)
        .strs("MediaTypes", &["a".into(), "b".into()])
        .build();
    MapBuilder::default().value("Sync", sync).build()
}

fn render(src: &str) -> Result<String, TemplateError> {
    Templates::default().render("t", src, &sync_data())
}

fn ok(src: &str) -> String {
    render(src).unwrap_or_else(|e| panic!("{src}: {e}"))
}

#[test]
fn plain_text_is_untouched() {
    assert_eq!(ok("no templates here"), "no templates here");
}

#[test]
fn documented_regsync_templates_tpl_2_tpl_3() {
    assert_eq!(ok(r#"{{ index (split .Sync.Source "gcr.io/") 1 }}"#), "example/repo");
    assert_eq!(ok("registry:5000/hub/{{ .Sync.Source }}"), "registry:5000/hub/gcr.io/example/repo");
    assert_eq!(ok(r#"{{ env "REGSYNC_TEST_SURELY_UNSET" | default "fallback" }}"#), "fallback");
    assert_eq!(ok("{{ .Sync.Interval }}"), "1h0m0s");
    assert_eq!(ok("{{ .Sync.Referrers }}"), "false");
    let now = chrono::Local::now();
    let expected = format!("{:04}{:02}{:02}", now.year(), now.month(), now.day());
    assert_eq!(ok(r#"{{ (time.Now).Format "20060102" }}"#), expected);
    let expected = format!("v1-{}{}{}", now.year(), now.month(), now.day());
    assert_eq!(ok(r#"{{$t := time.Now}}{{printf "%s-%d%d%d" "v1" $t.Year $t.Month $t.Day}}"#), expected);
    assert_eq!(ok(r#"{{ $t := time.Now }}{{ $t.Format "2006" }}"#), now.year().to_string());
}

#[test]
fn env_tpl_2() {
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(ok(r#"{{env "HOME"}}"#), home);
    assert_eq!(ok(r#"{{env "REGSYNC_TEST_SURELY_UNSET"}}"#), "");
}

#[test]
fn file_trims_and_missing_file_is_empty_tpl_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, "  s3cret\n\n").unwrap();
    assert_eq!(ok(&format!(r#"{{{{file "{}"}}}}"#, path.display())), "s3cret");
    assert_eq!(ok(&format!(r#"{{{{file "{}"}}}}"#, dir.path().join("nope").display())), "");
    // A file that never ends is read up to the limit, then treated as unreadable.
    assert_eq!(ok(r#"{{file "/dev/zero"}}"#), "");
}

#[test]
fn default_uses_go_zero_values_tpl_2() {
    assert_eq!(ok(r#"{{ "" | default "d" }}"#), "d");
    assert_eq!(ok(r#"{{ "x" | default "d" }}"#), "x");
    assert_eq!(ok(r#"{{ 0 | default 5 }}"#), "5");
    assert_eq!(ok(r#"{{ false | default "d" }}"#), "d");
    assert_eq!(ok(r#"{{ default "d" 7 }}"#), "7");
    assert!(render(r#"{{ default "d" }}"#).is_err());
}

#[test]
fn string_functions_tpl_2() {
    assert_eq!(ok(r#"{{ lower "AbC" }}"#), "abc");
    assert_eq!(ok(r#"{{ upper "AbC" }}"#), "ABC");
    assert_eq!(ok(r#"{{ trimSpace "  a b \n" }}"#), "a b");
    assert_eq!(ok(r#"{{ join (split "a,b,c" ",") "/" }}"#), "a/b/c");
    assert_eq!(ok(r#"{{ len (split "abc" "") }}"#), "3");
    assert_eq!(ok(r#"{{ join .Sync.MediaTypes "+" }}"#), "a+b");
}

#[test]
fn json_functions_tpl_2() {
    assert_eq!(ok(r#"{{ json (split "a<b,c" ",") }}"#), "[\"a<b\",\"c\"]\n");
    assert_eq!(ok(r#"{{ jsonPretty (split "a,b" ",") }}"#), "[\n  \"a\",\n  \"b\"\n]\n");
    assert_eq!(ok(r#"{{ json "x" }}"#), "\"x\"\n");
    assert_eq!(
        ok(r#"{{ printPretty .Sync.MediaTypes }}"#),
        "[\n  \"a\",\n  \"b\"\n]\n",
        "without a pretty form, printPretty is jsonPretty"
    );
    let data = with_pretty_form(MapBuilder::default().str("A", "1").build(), "A: 1\n".into());
    let out = Templates::default().render("t", "{{ printPretty . }}{{ json . }}", &data).unwrap();
    assert_eq!(out, "A: 1\n{\"A\":\"1\"}\n");
}

#[test]
fn time_parse_and_methods_tpl_2() {
    assert_eq!(ok(r#"{{ (time.Parse "2006-01-02" "2024-02-29").Format "Jan 2, 2006" }}"#), "Feb 29, 2024");
    assert_eq!(ok(r#"{{ $t := time.Parse "2006-01-02" "2024-02-29" }}{{ $t.Year }}-{{ $t.YearDay }}"#), "2024-60");
    assert_eq!(ok(r#"{{ ((time.Parse "2006-01-02" "2024-01-31").AddDate 0 1 0).Format "2006-01-02" }}"#), "2024-03-02");
    let err = render(r#"{{ time.Parse "2006-01-02" "never" }}"#).unwrap_err();
    assert!(err.to_string().contains("parsing time \"never\""), "{err}");
}

#[test]
fn go_builtins_work() {
    assert_eq!(ok(r#"{{ printf "%s-%03d" "a" 7 }}"#), "a-007");
    assert_eq!(ok(r#"{{ if eq .Sync.Type "repository" }}repo{{ else }}other{{ end }}"#), "repo");
    assert_eq!(ok(r#"{{ range $i, $m := .Sync.MediaTypes }}{{ $i }}={{ $m }};{{ end }}"#), "0=a;1=b;");
    assert_eq!(ok(r#"{{ len .Sync.Source }}"#), "19");
    assert_eq!(ok(r#"{{ and true "x" }}|{{ or "" "y" }}|{{ not false }}"#), "x|y|true");
    assert_eq!(ok(r#"{{ slice "abcdef" 1 3 }}|{{ urlquery "a b" }}|{{ html "<b>" }}"#), "bc|a+b|&lt;b&gt;");
    assert_eq!(ok(r#"{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" "in" }}"#), "[in]");
}

#[test]
fn misspelt_field_is_an_error_tpl_1() {
    let err = render("{{ .Sync.source }}").unwrap_err();
    assert_eq!(err.to_string(), "template execution error: can't evaluate field source");
}

#[test]
fn syntax_and_unknown_functions_are_errors_tpl_8() {
    assert!(matches!(render("{{ .Sync.Source "), Err(TemplateError::Parse(_))));
    assert!(matches!(render("{{ nosuchfunc }}"), Err(TemplateError::Execute(_))));
    assert!(render(r#"{{ .Sync.Source "arg" }}"#).is_err());
}

#[test]
fn ref_data_tpl_5() {
    let r = Reference::parse("registry:5000/x:3").unwrap();
    let data = MapBuilder::default().value("Ref", ref_value(&r)).build();
    let out = Templates::default()
        .render("b", "{{.Ref.Reference}}|{{.Ref.Registry}}|{{.Ref.Repository}}|{{.Ref.Tag}}|{{.Ref.CommonName}}", &data)
        .unwrap();
    assert_eq!(out, "registry:5000/x:3|registry:5000|x|3|registry:5000/x:3");
}

struct Shout;

impl FunctionProvider for Shout {
    fn provider_name(&self) -> String {
        "plugin \"shout\"".into()
    }
    fn functions(&self) -> Vec<String> {
        vec!["shout".into()]
    }
    fn call(&self, _function: &str, args: &[String]) -> Result<String, String> {
        if args.is_empty() {
            return Err("shout needs an argument".into());
        }
        Ok(args.join(" ").to_uppercase() + "!")
    }
}

struct Clash(&'static str);

impl FunctionProvider for Clash {
    fn provider_name(&self) -> String {
        "plugin \"clash\"".into()
    }
    fn functions(&self) -> Vec<String> {
        vec![self.0.into()]
    }
    fn call(&self, _: &str, _: &[String]) -> Result<String, String> {
        Ok(String::new())
    }
}

#[test]
fn providers_extend_the_function_table() {
    let mut engine = Templates::default();
    engine.add_provider(Arc::new(Shout)).unwrap();
    assert_eq!(engine.render("t", r#"{{ shout "hi" 3 }}"#, &Value::Nil).unwrap(), "HI 3!");
    assert_eq!(engine.render("t", r#"{{ "x" | shout }}"#, &Value::Nil).unwrap(), "X!");
    let err = engine.render("t", "{{ shout }}", &Value::Nil).unwrap_err();
    assert!(err.to_string().contains("shout needs an argument"));
    // The default engine is unchanged.
    assert!(Templates::default().render("t", r#"{{ shout "x" }}"#, &Value::Nil).is_err());
}

#[test]
fn provider_name_clashes_are_errors() {
    let mut engine = Templates::default();
    let err = engine.add_provider(Arc::new(Clash("env"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "template function \"env\" from plugin \"clash\" is already defined by the built-in functions"
    );
    assert!(engine.add_provider(Arc::new(Clash("printf"))).is_err());
    engine.add_provider(Arc::new(Shout)).unwrap();
    let err = engine.add_provider(Arc::new(Clash("shout"))).unwrap_err();
    assert!(err.to_string().ends_with("already defined by plugin \"shout\""));
}

#[test]
fn runaway_output_is_an_error_not_memory() {
    // Each level writes the one below twice: 2^25 copies of "x" if nothing stops it.
    let mut source = String::from(r#"{{define "l0"}}x{{end}}"#);
    for i in 1..=25 {
        source +=
            &format!(r#"{{{{define "l{i}"}}}}{{{{template "l{}"}}}}{{{{template "l{}"}}}}{{{{end}}}}"#, i - 1, i - 1);
    }
    source += r#"{{template "l25"}}"#;
    let e = Templates::default().render("t", &source, &sync_data()).unwrap_err().to_string();
    assert!(e.contains(&format!("the output is longer than {OUTPUT_LIMIT} bytes")), "{e}");
    let small = r#"{{define "a"}}ab{{end}}{{template "a"}}{{template "a"}}"#;
    assert_eq!(Templates::default().render("t", small, &sync_data()).unwrap(), "abab");
}
