//! Starts and stops the release `crm-local` binary over a data directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const KEY: &str = "bench-admin-key";

pub struct CrmLocal {
    child: Child,
    pub base: String,
}

fn binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("crm-local");
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run scripts/bench.sh",
        path.display()
    );
    Ok(path)
}

impl CrmLocal {
    pub fn start(data_dir: &Path) -> anyhow::Result<CrmLocal> {
        let mut child = Command::new(binary()?)
            .env("CRM_DATA_DIR", data_dir)
            .env("PORT", "0")
            .env("CRM_DEV_API_KEY", KEY)
            .env("CRM_SWEEP_INTERVAL_SECONDS", "1")
            .env("WEBHOOK_SWEEP_GRACE_SECONDS", "2")
            .env("AWS_LAMBDA_LOG_LEVEL", "warn")
            // The bursts measure the engine flat out, beyond the default 1,000 events a second.
            .env(
                common::config::MAX_EVENTS_PER_SECOND,
                crate::harness::UNLIMITED_EVENTS_PER_SECOND.to_string(),
            )
            .env_remove("CRM_TABLE")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let line = lines
                .next()
                .ok_or_else(|| anyhow::anyhow!("crm-local exited before listening"))??;
            if let Some(rest) = line.split("listening on ").nth(1) {
                let base = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                std::thread::spawn(move || lines.for_each(drop));
                return Ok(CrmLocal { child, base });
            }
        }
    }

    /// SIGKILL: no shutdown, no flush, as a crash.
    pub fn kill_9(mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for CrmLocal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = self.child.id().to_string();
            Command::new("kill").args(["-INT", &pid]).status().ok();
            self.child.wait().ok();
        }
    }
}
