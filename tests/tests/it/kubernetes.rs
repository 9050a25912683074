//! `examples/kubernetes/`: each overlay renders with `kubectl kustomize`, and
//! what it renders runs the image as a locked-down non-root pod. The config
//! in the ConfigMap of each overlay loads.

use std::path::Path;
use std::process::Command;

use regsync::config;
use regsync::template::Templates;
use serde_json::Value;

/// The documents `kubectl kustomize DIR` prints.
fn render(dir: &Path) -> Vec<Value> {
    let out = Command::new("kubectl").arg("kustomize").arg(dir).output().expect("run kubectl (kubernetes-client)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    serde_saphyr::from_multiple::<Value>(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The pod spec of a Deployment or a CronJob.
fn pod(workload: &Value) -> &Value {
    match workload["kind"].as_str() {
        Some("Deployment" | "StatefulSet" | "Job") => &workload["spec"]["template"]["spec"],
        Some("CronJob") => &workload["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        other => panic!("not a workload: {other:?}"),
    }
}

/// Everything a pod of ours must carry, whichever overlay made it.
fn assert_locked_down(workload: &Value) {
    let name = workload["metadata"]["name"].as_str().unwrap();
    let pod = pod(workload);
    assert_eq!(pod["serviceAccountName"], "regsync", "{name}");
    let sc = &pod["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true, "{name}");
    assert_eq!(sc["runAsUser"], 65532, "{name}");
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["image"], "registry.internal:5000/tools/regsync:v0.1.0", "{name}: the base's image");
    let csc = &c["securityContext"];
    assert_eq!(csc["readOnlyRootFilesystem"], true, "{name}");
    assert_eq!(csc["allowPrivilegeEscalation"], false, "{name}");
    assert_eq!(csc["capabilities"]["drop"], serde_json::json!(["ALL"]), "{name}");
    assert!(c["resources"]["requests"]["memory"].is_string() && c["resources"]["limits"]["memory"].is_string());
    let mounts: Vec<(&str, &str)> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["mountPath"].as_str().unwrap()))
        .collect();
    assert!(mounts.contains(&("docker-config", "/home/appuser/.docker")), "{name}: {mounts:?}");
    assert!(mounts.contains(&("cache", "/home/appuser/.cache")), "{name}: plugin cache {mounts:?}");
    let volumes = pod["volumes"].as_array().unwrap();
    let volume = |n: &str| volumes.iter().find(|v| v["name"] == n).unwrap_or_else(|| panic!("{name}: volume {n}"));
    assert!(volume("cache")["emptyDir"].is_object(), "{name}");
    let secret = &volume("docker-config")["secret"];
    assert_eq!(secret["items"][0]["path"], "config.json", "{name}: mounted as the Docker config");
    assert_eq!(volume("config")["configMap"]["name"], "regsync-config", "{name}");
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    assert!(args.windows(2).any(|w| w == ["-c", "/etc/regsync/regsync.yml"]), "{args:?}");
}

/// The regsync config inside the rendered ConfigMap, loaded as regsync would.
fn load_config(docs: &[Value], base: &Path) -> regsync::config::Config {
    let maps = kind(docs, "ConfigMap");
    let cm = maps.iter().find(|m| m["metadata"]["name"] == "regsync-config").expect("the config ConfigMap");
    let text = cm["data"]["regsync.yml"].as_str().unwrap();
    let origin = base.join("regsync.yml").display().to_string();
    config::load_str(text, &origin, &Templates::default()).unwrap_or_else(|e| panic!("{e}")).config
}

#[test]
fn each_overlay_renders_one_way_of_running_locked_down() {
    let root = regsync_tests::repo_root().join("examples/kubernetes");
    let server = render(&root.join("overlays/server"));
    let [deployment] = kind(&server, "Deployment")[..] else { panic!("one Deployment") };
    assert!(kind(&server, "CronJob").is_empty(), "the server overlay runs no CronJob");
    assert_locked_down(deployment);
    assert_eq!(deployment["spec"]["replicas"], 1);
    let c = &pod(deployment)["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    // Scraped where Prometheus discovers pods by annotation, on the listener's port.
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert_eq!(annotations["prometheus.io/port"].as_str(), c["ports"][0]["containerPort"].to_string().as_str().into());
    let [service] = kind(&server, "Service")[..] else { panic!("one Service") };
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    assert_eq!(kind(&server, "ServiceAccount")[0]["automountServiceAccountToken"], false);
    assert_eq!(load_config(&server, &root).sync.len(), 2);

    let cron = render(&root.join("overlays/cronjob"));
    let [job] = kind(&cron, "CronJob")[..] else { panic!("one CronJob") };
    assert!(kind(&cron, "Deployment").is_empty(), "the cronjob overlay runs no Deployment");
    assert_locked_down(job);
    assert_eq!(job["spec"]["concurrencyPolicy"], "Forbid");
    assert_eq!(pod(job)["containers"][0]["args"][0], "once");
    assert_eq!(load_config(&cron, &root).sync.len(), 2);

    // Nothing at the top level for `kubectl apply -f examples/kubernetes/` to start.
    let top: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json"))
        .collect();
    assert!(top.is_empty(), "{top:?}");
}

#[test]
fn the_plugin_overlay_ships_the_component_as_binary_data() {
    let wasm = regsync_tests::plugins::rust_plugin("keep-latest");
    // A copy of the tree with the built plugin where the overlay expects it.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kubernetes");
    let copied = Command::new("cp")
        .arg("-r")
        .arg(regsync_tests::repo_root().join("examples/kubernetes"))
        .arg(&root)
        .status()
        .unwrap();
    assert!(copied.success());
    let overlay = root.join("overlays/server-with-plugin");
    std::fs::copy(&wasm, overlay.join("keep_latest.wasm")).unwrap();
    let docs = render(&overlay);
    let [deployment] = kind(&docs, "Deployment")[..] else { panic!("one Deployment") };
    assert_locked_down(deployment);
    let maps = kind(&docs, "ConfigMap");
    let plugins = maps.iter().find(|m| m["metadata"]["name"] == "regsync-plugins").expect("plugins ConfigMap");
    use base64::Engine as _;
    let data = plugins["binaryData"]["keep_latest.wasm"].as_str().expect("binaryData");
    // kustomize wraps the base64 text into lines.
    let data: String = data.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(data).unwrap();
    assert_eq!(bytes, std::fs::read(&wasm).unwrap(), "the component, byte for byte");
    let c = &pod(deployment)["containers"][0];
    let mounted = c["volumeMounts"].as_array().unwrap().iter().any(|m| m["mountPath"] == "/etc/regsync-plugins");
    assert!(mounted, "{c}");
    let volumes = pod(deployment)["volumes"].as_array().unwrap();
    assert!(volumes.iter().any(|v| v["configMap"]["name"] == "regsync-plugins"));
    // The overlay's config loads the plugin from where the ConfigMap is mounted.
    let cm = maps.iter().find(|m| m["metadata"]["name"] == "regsync-config").unwrap();
    let text = cm["data"]["regsync.yml"].as_str().unwrap();
    assert!(text.contains("path: /etc/regsync-plugins/keep_latest.wasm"), "{text}");
    // Loaded for real, with the component where the pod would find it.
    let local = text.replace("/etc/regsync-plugins/keep_latest.wasm", &wasm.display().to_string());
    let host = regsync::plugin::PluginHost::new(Some(regsync_tests::plugins::cache_dir()));
    let setup = regsync::setup::load(&local, "regsync.yml", &host, None).unwrap_or_else(|e| panic!("{e}"));
    assert!(setup.warnings.is_empty(), "{:?}", setup.warnings);
    assert_eq!(setup.config.sync[0].spec.filters, ["keep-latest"]);
}

/// The REGSYNC_SHARDS of a workload's container.
fn shards_env(workload: &Value) -> u64 {
    let env = pod(workload)["containers"][0]["env"].as_array().unwrap();
    let v = env.iter().find(|e| e["name"] == "REGSYNC_SHARDS").expect("REGSYNC_SHARDS")["value"].as_str().unwrap();
    v.parse().unwrap()
}

#[test]
fn the_sharded_overlays_render_with_matching_counts() {
    let root = regsync_tests::repo_root().join("examples/kubernetes");
    let job = render(&root.join("overlays/sharded-job"));
    let [indexed] = kind(&job, "Job")[..] else { panic!("one Job") };
    assert_locked_down(indexed);
    let spec = &indexed["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = shards_env(indexed);
    assert!(n > 1);
    assert_eq!((spec["completions"].as_u64(), spec["parallelism"].as_u64()), (Some(n), Some(n)));
    assert_eq!(pod(indexed)["containers"][0]["args"][0], "once");
    assert!(kind(&job, "CronJob").is_empty() && kind(&job, "StatefulSet").is_empty());

    let server = render(&root.join("overlays/sharded-server"));
    let [sts] = kind(&server, "StatefulSet")[..] else { panic!("one StatefulSet") };
    assert_locked_down(sts);
    assert_eq!(sts["spec"]["replicas"].as_u64(), Some(shards_env(sts)));
    assert_eq!(pod(sts)["containers"][0]["args"][0], "server");
    let [headless] = kind(&server, "Service")[..] else { panic!("one Service") };
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(sts["spec"]["serviceName"], headless["metadata"]["name"]);
    assert!(kind(&server, "Deployment").is_empty());
    // Pod names end in the ordinal regsync reads as its shard.
    let name = sts["metadata"]["name"].as_str().unwrap();
    for i in 0..shards_env(sts) {
        let env = |k: &str| match k {
            "HOSTNAME" => Some(format!("{name}-{i}")),
            "REGSYNC_SHARDS" => Some(shards_env(sts).to_string()),
            _ => None,
        };
        let shard = regsync::shard::Shard::resolve(None, env).unwrap().unwrap();
        assert_eq!(shard.index as u64, i);
    }
}
