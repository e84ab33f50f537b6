//! `mcpist client ...`: the clients allowed over HTTP and their API keys.

use std::io::Write;
use std::process::ExitCode;

use crate::clients::Clients;
use crate::config::Config;

pub(super) fn add(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    let key = Clients::new(&config.serve.clients_file).add(name)?;
    let out = &mut std::io::stdout().lock();
    // The key alone on stdout, so that `mcpist client add x > key.txt` works;
    // the explanation goes to stderr.
    writeln!(out, "{}", key.as_str())?;
    eprintln!(
        "Registered client `{name}`. Its API key is above: it is shown only this once (only its sha256 is kept in {}).\n\
         The client sends it as `Authorization: Bearer <key>` to `mcpist serve --http`.",
        config.serve.clients_file.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn list(config: &Config) -> anyhow::Result<ExitCode> {
    let clients = Clients::new(&config.serve.clients_file).list()?;
    let out = &mut std::io::stdout().lock();
    if clients.is_empty() {
        writeln!(
            out,
            "No client is registered: add one with `mcpist client add NAME`."
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 2]> = clients.into_iter().map(|c| [c.name, c.created]).collect();
    super::print_table(out, &["CLIENT", "CREATED"], &rows)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn remove(config: &Config, name: &str) -> anyhow::Result<ExitCode> {
    Clients::new(&config.serve.clients_file).remove(name)?;
    writeln!(
        std::io::stdout().lock(),
        "Removed client `{name}`: its key is refused from the next request on."
    )?;
    Ok(ExitCode::SUCCESS)
}
