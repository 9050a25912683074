//! Test only: a gate whose setting `behave` chooses what it does, so the
//! host's side of gates can be tested: `allow`, `deny`, `trap`, `loop`,
//! `alloc`, `facts` (denies with the facts it was shown, one per line, so a
//! test can read them), and `read` (reads the referrer named by the settings
//! `digest`, `layer` and `max`, and denies with what came back).

use regsync_plugin_sdk::{Decision, Gate, ImageFacts, config, export_gate, read_referrer};

struct TestGate;

impl Gate for TestGate {
    fn decide(facts: ImageFacts) -> Decision {
        match config("behave").as_deref().unwrap_or("allow") {
            "allow" => Decision::Allow,
            "deny" => Decision::Deny(format!("test-gate says no to {}", facts.source)),
            "trap" => panic!("test-gate crashes on purpose"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "facts" => Decision::Deny(describe(&facts)),
            "read" => {
                let digest = config("digest").unwrap_or_default();
                let layer = config("layer").and_then(|l| l.parse().ok());
                let max = config("max").and_then(|m| m.parse().ok()).unwrap_or(1 << 20);
                match read_referrer(&digest, layer, max) {
                    Ok(bytes) => {
                        Decision::Deny(format!("read {} bytes: {}", bytes.len(), String::from_utf8_lossy(&bytes)))
                    }
                    Err(e) => Decision::Deny(format!("read failed: {e}")),
                }
            }
            other => Decision::Deny(format!("unknown behave {other:?}")),
        }
    }
}

fn describe(f: &ImageFacts) -> String {
    let pairs = |p: &[(String, String)]| p.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let mut out = vec![
        format!("source={}", f.source),
        format!("target={}", f.target),
        format!("digest={}", f.digest),
        format!("media-type={}", f.media_type),
        format!("platforms={}", f.platforms.join(",")),
        format!("annotations={}", pairs(&f.annotations)),
        format!("labels={}", pairs(&f.labels)),
        format!("created={}", f.created.as_deref().unwrap_or("-")),
        format!("size={}", f.size),
    ];
    for r in &f.referrers {
        out.push(format!("referrer={} {} {}", r.digest, r.artifact_type, pairs(&r.annotations)));
    }
    for s in &f.signers {
        out.push(format!(
            "signer={} {} {}",
            s.entry,
            s.identity.as_deref().unwrap_or("-"),
            s.issuer.as_deref().unwrap_or("-")
        ));
    }
    out.join(" | ")
}

export_gate!(TestGate);
