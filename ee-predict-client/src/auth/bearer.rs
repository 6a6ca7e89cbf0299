//! Bearer tokens from an environment variable (read on every call) and from a command
//! (its first line of output, cached by the caller for the configured time).

use std::process::Stdio;
use std::time::Duration;

use super::{check_header_safe, first_line, AuthError, Secret};

/// Time limit of one run of a token command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) fn read_env_token(var: &str) -> Result<Secret, AuthError> {
    let problem = |problem| AuthError::EnvVar {
        var: var.to_string(),
        problem,
    };
    let value = std::env::var(var).map_err(|e| match e {
        std::env::VarError::NotPresent => problem("is not set"),
        std::env::VarError::NotUnicode(_) => problem("is not valid UTF-8"),
    })?;
    let token = value.trim();
    if token.is_empty() {
        return Err(problem("is empty"));
    }
    check_header_safe(token, || format!("environment variable `{var}`"))?;
    tracing::trace!(var, "read bearer token from environment variable");
    Ok(Secret::new(token))
}

pub(super) async fn run_token_command(argv: &[String]) -> Result<Secret, AuthError> {
    let program = &argv[0];
    let mut command = tokio::process::Command::new(program);
    command
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(COMMAND_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            return Err(AuthError::CommandRun {
                command: program.clone(),
                reason: e.to_string(),
            })
        }
        Err(_) => {
            return Err(AuthError::CommandRun {
                command: program.clone(),
                reason: format!(
                    "it did not finish within {} s and was killed",
                    COMMAND_TIMEOUT.as_secs()
                ),
            })
        }
    };
    let status = describe_exit_status(output.status);
    let stderr = first_line(&String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        return Err(AuthError::CommandFailed {
            command: program.clone(),
            status,
            stderr,
        });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let token = stdout.trim_start().lines().next().unwrap_or("").trim();
    if token.is_empty() {
        return Err(AuthError::CommandNoToken {
            command: program.clone(),
            status,
            stderr,
        });
    }
    check_header_safe(token, || format!("command `{program}`"))?;
    Ok(Secret::new(token))
}

fn describe_exit_status(status: std::process::ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("signal {signal}");
        }
    }
    status.to_string()
}
