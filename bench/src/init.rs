//! Init: each Lambda binary from exec to its first `GET /runtime/invocation/next`, served by a
//! minimal Lambda Runtime API on 127.0.0.1, its RSS at that moment, and the size of its arm64
//! build stripped and zipped; beside a hello-world `lambda_runtime` binary built in the same run.
//!
//! `scripts/build_lambdas.sh` builds what this reads from `target/init-bench/`: `x86_64/<name>`
//! (timed here, natively) and `arm64/<name>` (what `sam build` uploads, sized only).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use crate::table::percentile;
use crate::table::{ms, row};

/// The reference binary (bench/hello-lambda).
const REFERENCE: &str = "hello-lambda";
/// infra/template.yaml's Globals: what Lambda tells the runtime.
const MEMORY_SIZE_MB: &str = "256";
/// A binary that has not asked for work by then is reported as broken.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

const GOAL_P50: Duration = Duration::from_millis(10);
const GOAL_ZIP_BYTES: u64 = 3_000_000;
const GOAL_RSS_BYTES: u64 = 20_000_000;

struct Binary {
    name: String,
    native: PathBuf,
    arm64: Option<PathBuf>,
}

struct Measured {
    p50: Duration,
    p95: Duration,
    /// Largest RSS seen across the runs.
    rss: u64,
    /// Stripped (the release profile strips) and zipped as SAM uploads it.
    arm64: Option<(u64, u64)>,
}

pub async fn run(quick: bool) -> anyhow::Result<()> {
    let runs = if quick { 10 } else { 30 };
    let dir = built_dir()?;
    let binaries = binaries(&dir)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?.to_string();

    // One untimed start each first, so that no binary pays for reading itself from disk.
    for binary in &binaries {
        start_once(&listener, &api, binary).await?;
    }
    // Runs interleave the binaries, so that noise from the shared machine spreads over all.
    let mut samples: Vec<(Vec<Duration>, u64)> = vec![(Vec::new(), 0); binaries.len()];
    for _ in 0..runs {
        for (binary, (times, rss)) in binaries.iter().zip(&mut samples) {
            let (took, resident) = start_once(&listener, &api, binary).await?;
            times.push(took);
            *rss = (*rss).max(resident);
        }
    }

    let mut measured = Vec::new();
    for (binary, (mut times, rss)) in binaries.iter().zip(samples) {
        times.sort();
        let arm64 = match &binary.arm64 {
            Some(path) => Some((std::fs::metadata(path)?.len(), zipped_size(path)?)),
            None => None,
        };
        measured.push(Measured {
            p50: percentile(&times, 0.50),
            p95: percentile(&times, 0.95),
            rss,
            arm64,
        });
    }
    print_tables(&binaries, &measured, runs);
    Ok(())
}

/// `target/init-bench`, beside the `release/` directory this binary runs from.
fn built_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let target = exe
        .parent()
        .and_then(Path::parent)
        .context("crm-bench runs from <target>/release")?;
    let dir = target.join("init-bench");
    if !dir.join("x86_64").is_dir() {
        bail!(
            "{} is missing: run scripts/build_lambdas.sh (scripts/bench.sh does)",
            dir.display()
        );
    }
    Ok(dir)
}

/// Every native binary the build script left, the reference last.
fn binaries(dir: &Path) -> anyhow::Result<Vec<Binary>> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("x86_64"))?
        .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
        .collect::<anyhow::Result<_>>()?;
    names.sort_by_key(|name| (name == REFERENCE, name.clone()));
    if names.last().map(String::as_str) != Some(REFERENCE) {
        bail!("{REFERENCE} was not built: run scripts/build_lambdas.sh");
    }
    Ok(names
        .into_iter()
        .map(|name| {
            let arm64 = dir.join("arm64").join(&name);
            Binary {
                native: dir.join("x86_64").join(&name),
                arm64: arm64.is_file().then_some(arm64),
                name,
            }
        })
        .collect())
}

/// Starts the binary as Lambda would and waits for its first request for work: the time from
/// just before exec, and its resident memory then (it is blocked on our answer, which never
/// comes: the process is killed).
async fn start_once(
    listener: &TcpListener,
    api: &str,
    binary: &Binary,
) -> anyhow::Result<(Duration, u64)> {
    let mut command = Command::new(&binary.native);
    command
        .env_clear()
        .envs(lambda_env(api, &binary.name))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command
        .spawn()
        .with_context(|| format!("starting {}", binary.native.display()))?;
    let first = tokio::time::timeout(INIT_TIMEOUT, first_request(listener, &mut child)).await;
    let took = started.elapsed();
    let rss = resident_bytes(child.id());
    child.kill().ok();
    let output = child.wait_with_output()?;
    let failure = match first {
        Ok(Ok(request)) if request.contains("/runtime/invocation/next") => None,
        Ok(Ok(request)) => Some(format!("its first call was {request}")),
        Ok(Err(error)) => Some(error.to_string()),
        Err(_) => Some(format!("no request within {INIT_TIMEOUT:?}")),
    };
    if let Some(failure) = failure {
        bail!(
            "{}: {failure}\n{}",
            binary.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok((took, rss))
}

/// The environment a `provided.al2023` function sees, pointed at our Runtime API and at the
/// emulator scripts/moto.sh started. Init must not call it: the SDK clients connect lazily.
fn lambda_env(api: &str, name: &str) -> Vec<(String, String)> {
    let inherited = |key: &str, default: &str| {
        let value = std::env::var(key).unwrap_or_else(|_| default.to_owned());
        (key.to_owned(), value)
    };
    let set = |key: &str, value: &str| (key.to_owned(), value.to_owned());
    vec![
        set("AWS_LAMBDA_RUNTIME_API", api),
        set("AWS_LAMBDA_FUNCTION_NAME", name),
        set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_SIZE_MB),
        set("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        set("AWS_LAMBDA_LOG_GROUP_NAME", &format!("/aws/lambda/{name}")),
        set("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/27/[$LATEST]bench"),
        set("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        set("AWS_LAMBDA_LOG_LEVEL", "INFO"),
        set("AWS_EXECUTION_ENV", "AWS_Lambda_rust"),
        set("_HANDLER", "bootstrap"),
        set("LAMBDA_TASK_ROOT", "/var/task"),
        set("LAMBDA_RUNTIME_DIR", "/var/runtime"),
        set("TZ", ":UTC"),
        set("LANG", "en_US.UTF-8"),
        set("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
        set("CRM_TABLE", "crm-bench-init"),
        set(
            "CRM_QUEUE_URL",
            "http://127.0.0.1/123456789012/crm-bench-init-deliveries",
        ),
        inherited("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
        inherited("AWS_REGION", "us-east-1"),
        inherited("AWS_DEFAULT_REGION", "us-east-1"),
        inherited("AWS_ACCESS_KEY_ID", "testing"),
        inherited("AWS_SECRET_ACCESS_KEY", "testing"),
        inherited("AWS_SESSION_TOKEN", "testing"),
    ]
    .into_iter()
    .chain(kms_key_variable(name))
    .collect()
}

/// `CRM_KMS_KEY_ID` where the template sets it (the functions that seal or open webhook
/// secrets), so that they start as deployed: a made-up ARN, since init makes no KMS call.
fn kms_key_variable(name: &str) -> Option<(String, String)> {
    const TEMPLATE: &str = include_str!("../../infra/template.yaml");
    let code_uri = format!("CodeUri: ../functions/{name}\n");
    let start = TEMPLATE.find(&code_uri)?;
    let rest = &TEMPLATE[start..];
    let end = rest.find("\n  # ").unwrap_or(rest.len());
    let end = end.min(rest.find("Type: AWS::").unwrap_or(rest.len()));
    rest[..end].contains("CRM_KMS_KEY_ID:").then(|| {
        (
            "CRM_KMS_KEY_ID".to_owned(),
            "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
                .to_owned(),
        )
    })
}

/// The request line of the first request that reaches the Runtime API, or why none did.
/// (std's `Child`, polled: tokio's would need its `process` feature, and a tokio built with
/// other features than the functions' makes cargo compile the AWS SDK twice in one target.)
async fn first_request(listener: &TcpListener, child: &mut Child) -> anyhow::Result<String> {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                return read_request_line(stream).await;
            }
            () = tokio::time::sleep(Duration::from_millis(20)) => {
                if let Some(status) = child.try_wait()? {
                    bail!("it exited ({status}) before asking for work");
                }
            }
        }
    }
}

/// Reads up to the end of the head, so the time taken is that of the whole request.
async fn read_request_line(mut stream: TcpStream) -> anyhow::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            bail!("the connection closed before a whole request");
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    Ok(text.lines().next().unwrap_or_default().to_owned())
}

fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// The size of `bootstrap` zipped with deflate, as `sam build` packages it (python's zipfile).
fn zipped_size(path: &Path) -> anyhow::Result<u64> {
    let zip = path.with_extension("zip");
    let status = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as z:\n\
             \x20   z.write(sys.argv[1], 'bootstrap')",
        ])
        .arg(path)
        .arg(&zip)
        .status()
        .context("running python3 to zip")?;
    if !status.success() {
        bail!("zipping {} failed", path.display());
    }
    Ok(std::fs::metadata(&zip)?.len())
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

fn print_tables(binaries: &[Binary], measured: &[Measured], runs: usize) {
    println!("\n## Init: exec → first `GET /runtime/invocation/next` ({runs} runs each)\n");
    println!("Timing and RSS: native x86_64 release builds on this machine; sizes: arm64 release");
    println!("builds as `sam build` makes them (stripped; zipped with deflate). \"-\": not built");
    println!("for arm64 in this run. Other functions: `INIT_FUNCTIONS=all scripts/bench.sh init`");
    println!("(see scripts/build_lambdas.sh). MB: 10^6 bytes.\n");
    println!("| binary | init p50 | init p95 | RSS after init | arm64 stripped | arm64 zipped |");
    println!("|---|---|---|---|---|---|");
    for (binary, m) in binaries.iter().zip(measured) {
        let label = if binary.name == REFERENCE {
            format!("{REFERENCE} (reference: hello-world lambda_runtime)")
        } else {
            binary.name.clone()
        };
        let (stripped, zipped) = m
            .arm64
            .map_or(("-".into(), "-".into()), |(s, z)| (mb(s), mb(z)));
        println!(
            "| {label} | {} | {} | {} | {stripped} | {zipped} |",
            ms(m.p50),
            ms(m.p95),
            mb(m.rss)
        );
    }
    println!(
        "| goal | ≤ {} | - | ≤ {} | - | ≤ {} |",
        ms(GOAL_P50),
        mb(GOAL_RSS_BYTES),
        mb(GOAL_ZIP_BYTES)
    );

    let (functions, reference) = measured.split_at(measured.len() - 1);
    let reference = &reference[0];
    let worst = |key: fn(&Measured) -> Option<u64>| functions.iter().filter_map(key).max();
    let show = |value: Option<u64>, unit: fn(u64) -> String| value.map_or("-".into(), unit);
    let as_ms = |nanos: u64| ms(Duration::from_nanos(nanos));
    let p50 = |m: &Measured| Some(m.p50.as_nanos() as u64);
    let rss = |m: &Measured| Some(m.rss);
    let zip = |m: &Measured| m.arm64.map(|(_, z)| z);
    println!("\n| figure | worst of our functions | hello-world lambda_runtime | goal |");
    println!("|---|---|---|---|");
    row(
        "init p50",
        show(worst(p50), as_ms),
        &show(p50(reference), as_ms),
        &format!("≤ {}", ms(GOAL_P50)),
    );
    row(
        "RSS after init",
        show(worst(rss), mb),
        &show(rss(reference), mb),
        &format!("≤ {}", mb(GOAL_RSS_BYTES)),
    );
    row(
        "arm64 zipped",
        show(worst(zip), mb),
        &show(zip(reference), mb),
        &format!("≤ {}", mb(GOAL_ZIP_BYTES)),
    );
}
