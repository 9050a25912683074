//! The `regsync` binary's command-line surface (CLI-1 … CLI-13).

use regsync_tests::bin::{run, run_in};

const VALID: &str = "creds:\n  - registry: r:5000\n    pass: hunter22\nsync:\n  - source: alpine\n    target: r:5000/alpine\n    type: repository\n    tagz: {}\n";

fn temp_config(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("regsync.yml");
    std::fs::write(&path, text).unwrap();
    let p = path.to_string_lossy().into_owned();
    (dir, p)
}

#[test]
fn no_command_prints_help_and_succeeds_cli_1() {
    let r = run(&[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("Utility for mirroring docker repositories"));
    for cmd in ["once", "check", "server", "config", "version"] {
        assert!(r.stdout.contains(cmd), "help lists {cmd}");
    }
    assert_eq!(run(&["--help"]).code, 0);
}

#[test]
fn config_flag_is_required_cli_4() {
    for cmd in ["once", "check", "server", "config"] {
        let r = run(&[cmd]);
        assert_eq!(r.code, 1, "{cmd}: {r:?}");
        assert_eq!(r.stderr.trim(), "required flag(s) \"config\" not set");
    }
    let r = run(&["config", "-c", ""]);
    assert_eq!((r.code, r.stderr.trim()), (1, "required input missing: --config"));
}

#[test]
fn config_from_stdin_and_either_flag_position_cli_4_doc_9() {
    let r = run_in(&regsync_tests::repo_root(), &["config", "-c", "-"], Some(VALID));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("target: r:5000/alpine"));
    let (_dir, path) = temp_config(VALID);
    let before = run(&["-c", &path, "config"]);
    let after = run(&["config", "--config", &path]);
    assert_eq!((before.code, after.code), (0, 0));
    assert_eq!(before.stdout, after.stdout);
}

#[test]
fn config_prints_processed_config_redacted_cli_13() {
    let (_dir, path) = temp_config(VALID);
    let r = run(&["config", "-c", &path]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("hunter22") && !r.stderr.contains("hunter22"), "{r:?}");
    assert!(r.stdout.contains("[redacted]"));
    assert!(r.stdout.contains("mediaTypes:"), "defaults are merged into the step");
    // The unknown key warns on stderr, naming the step and line.
    assert!(r.stderr.contains("level=WARN"), "{}", r.stderr);
    assert!(
        r.stderr.contains("regsync.yml:8:11: sync[0] (source \\\"alpine\\\") tagz: unknown key, ignored"),
        "{}",
        r.stderr
    );
}

#[test]
fn json_logs_are_one_object_per_line_log_1() {
    let (_dir, path) = temp_config(VALID);
    let r = run(&["config", "-c", &path, "--logopt", "json"]);
    assert_eq!(r.code, 0);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(v["level"], "WARN");
        assert!(v["time"].is_string() && v["msg"].as_str().unwrap().contains("unknown key"));
    }
}

#[test]
fn invalid_config_fails_with_every_error_cli_11() {
    let (_dir, path) = temp_config(
        "sync:\n  - source: a\n    target: r:5000/a\n    type: nope\n  - source: b\n    target: r:5000/b\n    type: image\n    interval: -1m\n",
    );
    for cmd in ["config", "once", "check", "server"] {
        let r = run(&[cmd, "-c", &path]);
        assert_eq!(r.code, 1, "{cmd}");
        assert!(r.stderr.contains("2 errors"), "{}", r.stderr);
        assert!(
            r.stderr.contains("regsync.yml:4:11: sync[0] (source \"a\") type: unknown type \"nope\""),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains("regsync.yml:8:15: sync[1] (source \"b\") interval: interval -1m0s is negative"),
            "{}",
            r.stderr
        );
    }
    let r = run(&["config", "-c", "/nonexistent/regsync.yml"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("failed to read config /nonexistent/regsync.yml"), "{}", r.stderr);
}

#[test]
fn arguments_are_rejected_cli_8() {
    let (_dir, path) = temp_config(VALID);
    let r = run(&["config", "-c", &path, "extra"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("unexpected argument 'extra'"), "{}", r.stderr);
    assert_eq!(run(&["version", "extra"]).code, 1);
}

#[test]
fn verbosity_is_checked_before_the_config_flag_cli_9_cli_10() {
    let r = run(&["once", "-v", "bogus"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("unable to parse verbosity bogus"), "{}", r.stderr);
    let (_dir, path) = temp_config(VALID);
    for level in ["trace", "debug", "INFO", "warn", "error", "info+2"] {
        assert_eq!(run(&["config", "-c", &path, "-v", level]).code, 0, "{level}");
    }
    let quiet = run(&["config", "-c", &path, "-v", "error"]);
    assert!(quiet.stderr.is_empty(), "warnings hidden at error level: {}", quiet.stderr);
}

#[test]
fn version_output_and_format_cli_7() {
    let r = run(&["version"]);
    assert_eq!(r.code, 0);
    let labels: Vec<&str> = r.stdout.lines().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        labels,
        [
            "VCSTag",
            "VCSRef",
            "VCSCommit",
            "VCSState",
            "VCSDate",
            "Platform",
            "GoVer",
            "GoCompiler",
            "PluginWIT",
            "Wasmtime"
        ]
    );
    let wit = std::fs::read_to_string(regsync_tests::repo_root().join("wit/regsync-plugin.wit")).unwrap();
    let plugin = run(&["version", "--format", "{{.PluginWIT}} {{.Wasmtime}}"]).stdout;
    let (wit_version, wasmtime) = plugin.split_once(' ').unwrap();
    assert!(wit.contains(&format!("package regsync:plugin@{wit_version};")), "{plugin}");
    let lock = std::fs::read_to_string(regsync_tests::repo_root().join("Cargo.lock")).unwrap();
    assert!(lock.contains(&format!("name = \"wasmtime\"\nversion = \"{wasmtime}\"")), "{plugin}");
    let tag = run(&["version", "--format", "{{.VCSTag}}"]);
    assert_eq!(tag.code, 0);
    assert!(tag.stdout.starts_with('v') && !tag.stdout.ends_with('\n'), "{:?}", tag.stdout);
    let bad = run(&["version", "--format", "{{.Nope}}"]);
    assert_eq!(bad.code, 1);
}

/// `completion` (cobra gives regsync one): a script for each shell; the bash
/// one, sourced in a real bash, registers and completes subcommands.
#[test]
fn completion_scripts_register_in_a_real_shell_cli_2() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let r = run(&["completion", shell]);
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(r.stdout.contains("regsync") && r.stdout.contains("once"), "{shell}");
    }
    let bad = run(&["completion", "tcsh"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("invalid value 'tcsh'"), "{}", bad.stderr);

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("regsync.bash");
    std::fs::write(&script, run(&["completion", "bash"]).stdout).unwrap();
    let probe = format!(
        "source {} && complete -p regsync && COMP_WORDS=(regsync ch) COMP_CWORD=1 && _regsync regsync ch regsync && echo \"words: ${{COMPREPLY[*]}}\" \
         && COMP_WORDS=(regsync once --ab) COMP_CWORD=2 && _regsync regsync --ab once && echo \"flags: ${{COMPREPLY[*]}}\"",
        script.display()
    );
    let out = std::process::Command::new("bash").arg("--norc").arg("-c").arg(&probe).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let mut lines = stdout.lines();
    let registered = lines.next().unwrap();
    assert!(registered.starts_with("complete ") && registered.ends_with(" regsync"), "{registered}");
    assert!(registered.contains("-F _regsync"), "{registered}");
    assert_eq!(lines.next(), Some("words: check"));
    assert_eq!(lines.next(), Some("flags: --abort-on-error"));
}
