//! `chaos_proxy`: the fault-injecting proxy of `ee_benches::chaos` as a process, for
//! `cargo xtask chaos`.
//!
//! ```text
//! chaos_proxy --upstream 127.0.0.1:8501 [--rate 0.2] [--seed 7] [--stall-ms 2000]
//!             [--retry-after 1] [--listen 127.0.0.1:0]
//! ```
//!
//! Prints `proxy: ADDR` once listening, then serves until its standard input closes, and then
//! prints `stats: requests=N forwarded=N upstream_errors=N 429+retry-after=N 503=N reset=N
//! stall=N truncated=N` and exits.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use ee_benches::chaos::{ChaosConfig, ChaosProxy};

fn parse_args() -> Result<ChaosConfig, String> {
    let mut args = std::env::args().skip(1);
    let mut upstream: Option<SocketAddr> = None;
    let mut config = ChaosConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), 7);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let bad = |v: &str| format!("bad value {v:?} for {flag}");
        match flag.as_str() {
            "--upstream" => {
                let v = value()?;
                upstream = Some(v.parse().map_err(|_| bad(&v))?);
            }
            "--listen" => {
                let v = value()?;
                config.listen = v.parse().map_err(|_| bad(&v))?;
            }
            "--rate" => {
                let v = value()?;
                config.rate = v.parse().map_err(|_| bad(&v))?;
            }
            "--seed" => {
                let v = value()?;
                config.seed = v.parse().map_err(|_| bad(&v))?;
            }
            "--stall-ms" => {
                let v = value()?;
                config.stall = Duration::from_millis(v.parse().map_err(|_| bad(&v))?);
            }
            "--retry-after" => {
                let v = value()?;
                config.retry_after_s = v.parse().map_err(|_| bad(&v))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    config.upstream = upstream.ok_or("--upstream HOST:PORT is required")?;
    Ok(config)
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chaos_proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chaos_proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let proxy = match ChaosProxy::start(config).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("chaos_proxy: cannot listen: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("proxy: {}", proxy.addr());
        let _ = std::io::stdout().flush();
        // Serve until standard input closes.
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = [0u8; 256];
            while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        })
        .await;
        println!("stats: {}", proxy.stats());
        let _ = std::io::stdout().flush();
        ExitCode::SUCCESS
    })
}
