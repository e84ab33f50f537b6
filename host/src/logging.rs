//! Structured logs with `tracing`.
//!
//! Logs never go to stdout: in stdio mode stdout carries MCP messages only,
//! whatever the log level. They go to stderr, or to a file if configured.

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::EnvFilter;

/// Targets that log every function they compile at debug and trace level:
/// megabytes per module. They stay at `warn` unless the filter names them.
const COMPILER_TARGETS: &[&str] = &[
    "cranelift",
    "regalloc2",
    "wasmtime_internal_cranelift",
    "wasmtime_environ",
    "wasmtime_internal_environ",
];

/// Install the global subscriber. `MCPIST_LOG` (a `tracing` filter such as
/// `debug` or `mcpist=trace`) overrides the configured level.
pub fn init(level: &str, file: Option<&Path>) -> anyhow::Result<()> {
    let (directive, origin) = match std::env::var("MCPIST_LOG") {
        Ok(directive) if !directive.is_empty() => (directive, "MCPIST_LOG"),
        _ => (level.to_owned(), "the config's log level"),
    };
    let filter = filter(&directive)
        .map_err(|e| anyhow::anyhow!("{origin} {directive:?} is not a valid log filter: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match file {
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt;
            // The log may name modules, clients and hosts: the owner's alone.
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open log file {}: {e}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .init();
        }
        None => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init(),
    }
    Ok(())
}

/// Targets that log content verbatim at debug level: the MCP library every
/// request's arguments and every result (what the owner's tools read and
/// wrote), WASI every byte a guest writes to stdout or stderr, before the
/// host redacts and escapes it; and the AWS signer, at trace, the AWS
/// access key id and each request to Secrets Manager. They stay at `info`
/// unless the filter names them (`MCPIST_LOG=debug,rmcp=debug`).
const CONTENT_TARGETS: &[&str] = &["rmcp", "wasmtime_wasi", "aws_sigv4"];

fn filter(directive: &str) -> Result<EnvFilter, tracing_subscriber::filter::ParseError> {
    use tracing_subscriber::filter::LevelFilter;
    let mut filter = EnvFilter::try_new(directive)?;
    // The level of targets the directive does not name: its part without
    // `=` (`debug` in `debug,mcpist=trace`); none means errors only. The caps
    // below only ever lower a target's level, never raise it past this.
    let default_level = directive
        .split(',')
        .filter(|part| !part.contains('='))
        .filter_map(|part| part.trim().parse::<LevelFilter>().ok())
        .max()
        .unwrap_or(LevelFilter::ERROR);
    let caps = [
        (COMPILER_TARGETS, LevelFilter::WARN),
        (CONTENT_TARGETS, LevelFilter::INFO),
    ];
    for (targets, cap) in caps {
        if default_level <= cap {
            continue;
        }
        for target in targets {
            if !directive.contains(target) {
                filter = filter.add_directive(format!("{target}={cap}").parse()?);
            }
        }
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn verbose_levels_keep_content_and_compiler_logs_capped() {
        let debug = filter("debug").unwrap().to_string();
        assert!(debug.contains("rmcp=info"), "{debug}");
        assert!(debug.contains("cranelift=warn"), "{debug}");
        // Named targets are the owner's choice.
        let named = filter("debug,rmcp=debug").unwrap().to_string();
        assert!(!named.contains("rmcp=info"), "{named}");
    }

    #[test]
    fn quiet_levels_are_not_raised_for_the_capped_targets() {
        for quiet in ["warn", "error", "warn,mcpist=debug"] {
            let shown = filter(quiet).unwrap().to_string();
            assert!(
                !shown.contains("rmcp=info") && !shown.contains("cranelift=warn"),
                "{quiet}: {shown}"
            );
        }
        // At `info`, compiler targets are capped (they log per function at
        // debug only), content targets need no cap.
        let info = filter("info").unwrap().to_string();
        assert!(
            !info.contains("rmcp=info") && info.contains("cranelift=warn"),
            "{info}"
        );
    }
}
