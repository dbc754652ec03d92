//! What the harnesses (`oms bench ingest`, `oms storm`) share: a throwaway PostgreSQL
//! cluster on a free loopback port, and real `oms serve` child processes (this binary).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;

/// A throwaway PostgreSQL cluster on a free loopback port, stopped when dropped.
pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    as_postgres: bool,
    port: u16,
    pub url: String,
}

impl Cluster {
    fn command(&self, program: &str) -> std::process::Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            std::process::Command::new(path)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn start() -> anyhow::Result<Cluster> {
        let bin = ["/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.join("initdb").exists())
            .context("PostgreSQL server binaries not found: apt-get install -y postgresql-15, or pass --database-url")?;
        let dir = tempfile::tempdir()?;
        // initdb refuses root: as root the cluster belongs to the postgres user.
        let as_postgres = std::process::Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0"))
            .unwrap_or(false);
        if as_postgres {
            std::process::Command::new("chown")
                .args(["postgres"])
                .arg(dir.path())
                .status()?;
        }
        let port = free_port()?;
        let cluster = Cluster {
            bin,
            dir,
            as_postgres,
            port,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        };
        let status = cluster
            .command("initdb")
            .arg("-D")
            .arg(cluster.data())
            .args(["-U", "postgres", "-A", "trust"])
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "initdb failed");
        cluster.start_again()?;
        Ok(cluster)
    }

    /// Starts the (stopped) cluster on its port and waits until it accepts connections.
    pub fn start_again(&self) -> anyhow::Result<()> {
        // Durable: synchronous_commit stays on, as in production.
        let options = format!(
            "-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "120", "-o", &options, "start"])
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "pg_ctl start failed");
        Ok(())
    }

    /// `pg_ctl -m immediate stop`: every backend dies at once, as in a crash; the next
    /// start recovers from the WAL.
    pub fn stop_immediately(&self) -> anyhow::Result<()> {
        let status = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "pg_ctl stop failed");
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop_immediately();
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running `oms serve` child process.
pub struct Server {
    child: tokio::process::Child,
    pub base: String,
}

impl Server {
    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGKILL (`kill -9`) and reap.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// How to start `oms serve`.
pub struct ServeOptions<'a> {
    pub url: &'a str,
    pub port: u16,
    pub admin_token: &'a str,
    pub extra_args: &'a [&'a str],
    /// Appends the server's output and log here; this process's when absent.
    pub log: Option<&'a Path>,
}

/// Starts `oms serve` and waits until `/healthz` answers 200; fails at once if the
/// process exits first (its database is down, say).
pub async fn start_server(options: &ServeOptions<'_>) -> anyhow::Result<Server> {
    // Logs go to standard output.
    let (stdout, stderr) = match options.log {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            (Stdio::from(file.try_clone()?), Stdio::from(file))
        }
        None => (Stdio::inherit(), Stdio::inherit()),
    };
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", options.port)])
        .args(["--database-url", options.url])
        .args(["--admin-token", options.admin_token])
        .args(options.extra_args)
        // `OMS_SERVE_LOG` sets the server's log filter, e.g. `sqlx::query=debug` to see
        // every statement with its time while profiling a bench.
        .env(
            "RUST_LOG",
            std::env::var("OMS_SERVE_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .context("starting oms serve")?;
    let base = format!("http://127.0.0.1:{}", options.port);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    for _ in 0..600 {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("oms serve exited with {status} before it became healthy");
        }
        if http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(Server { child, base });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("oms serve did not become healthy")
}
