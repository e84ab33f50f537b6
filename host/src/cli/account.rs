//! `mcpist account ...`: the owner's accounts per service.
//!
//! A token is read from stdin when stdin is not a terminal (`gh auth token |
//! mcpist account add github personal`), else from a prompt that does not
//! echo. It is never taken from the command line, where it would land in
//! shell history and in every process listing.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::broker::{Broker, BrokerError, VaultError};
use crate::config::Config;

/// Longest token accepted from stdin; anything longer is not a token.
const MAX_TOKEN_BYTES: u64 = 64 * 1024;

pub(super) async fn add(
    config: &Config,
    service: &str,
    name: &str,
    make_default: bool,
) -> anyhow::Result<ExitCode> {
    let broker = broker(config);
    let vault = broker.vault_for(service)?;
    let secret = if vault.stores_secrets() {
        Some(read_token(service, name)?)
    } else {
        None
    };
    let account = broker.add(service, name, secret, make_default).await?;
    let accounts = broker.accounts()?;
    let out = &mut std::io::stdout().lock();
    if vault.stores_secrets() {
        writeln!(
            out,
            "Added {service} account `{name}`; its token is stored in vault `{}`.",
            account.vault
        )?;
    } else {
        writeln!(
            out,
            "Added {service} account `{name}`; vault `{}` ({}) reads its token from `{}` when a call needs it.",
            account.vault,
            vault.kind(),
            account.reference
        )?;
    }
    if accounts.default_for(service) == Some(name) {
        writeln!(out, "It is the default {service} account.")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn list(config: &Config, service: Option<&str>) -> anyhow::Result<ExitCode> {
    let broker = broker(config);
    let accounts = broker.accounts()?;
    let out = &mut std::io::stdout().lock();
    let shown: Vec<_> = accounts
        .all()
        .iter()
        .filter(|a| service.is_none_or(|s| a.service == s))
        .collect();
    if shown.is_empty() {
        let what = service.map_or("accounts".to_owned(), |s| format!("{s} accounts"));
        writeln!(
            out,
            "No {what} yet: add one with `mcpist account add SERVICE NAME`."
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::new();
    for account in shown {
        // Checking that the secret is there reads it; it is dropped (and
        // zeroized) at once and never printed.
        let status = match broker.secret(account).await {
            Ok(_) => "ok".to_owned(),
            Err(BrokerError::Secret {
                source: VaultError::NotFound { .. },
                ..
            }) => "secret missing".to_owned(),
            Err(e) => format!("unavailable: {}", root_reason(&e)),
        };
        let default = accounts.default_for(&account.service) == Some(account.name.as_str());
        rows.push([
            account.service.clone(),
            account.name.clone(),
            if default { "yes" } else { "" }.to_owned(),
            account.vault.clone(),
            account.reference.clone(),
            status,
        ]);
    }
    super::print_table(
        out,
        &[
            "SERVICE",
            "ACCOUNT",
            "DEFAULT",
            "VAULT",
            "REFERENCE",
            "SECRET",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn remove(config: &Config, service: &str, name: &str) -> anyhow::Result<ExitCode> {
    let broker = broker(config);
    let account = broker.remove(service, name).await?;
    let accounts = broker.accounts()?;
    let out = &mut std::io::stdout().lock();
    writeln!(
        out,
        "Removed {service} account `{name}` and its secret from vault `{}`.",
        account.vault
    )?;
    match accounts.default_for(service) {
        Some(default) => writeln!(out, "The default {service} account is now `{default}`.")?,
        None if accounts.of(service).next().is_some() => writeln!(
            out,
            "{service} has no default account now: choose one with `mcpist account default {service} NAME`."
        )?,
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn set_default(config: &Config, service: &str, name: &str) -> anyhow::Result<ExitCode> {
    broker(config).set_default(service, name)?;
    writeln!(
        std::io::stdout().lock(),
        "`{name}` is now the default {service} account."
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The broker as `mcpist.toml` configures it; file vaults take their key
/// from `MCPIST_VAULT_KEY` when it is set.
pub(super) fn broker(config: &Config) -> Broker {
    Broker::new(&config.broker, vault_key_from_env())
}

/// `MCPIST_VAULT_KEY`, the key of the local encrypted vaults, if set.
pub(super) fn vault_key_from_env() -> Option<SecretString> {
    std::env::var("MCPIST_VAULT_KEY")
        .ok()
        .filter(|k| !k.is_empty())
        .map(SecretString::from)
}

fn read_token(service: &str, name: &str) -> anyhow::Result<SecretString> {
    let stdin = std::io::stdin();
    let raw = if stdin.is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password(format!("Token for {service} account `{name}`: "))
                .context("cannot read the token from the terminal")?,
        )
    } else {
        let mut text = Zeroizing::new(String::new());
        stdin
            .lock()
            .take(MAX_TOKEN_BYTES + 1)
            .read_to_string(&mut text)
            .context("cannot read the token from stdin (it must be UTF-8 text)")?;
        if text.len() as u64 > MAX_TOKEN_BYTES {
            anyhow::bail!(
                "stdin holds more than {} KiB; pipe only the token",
                MAX_TOKEN_BYTES / 1024
            );
        }
        text
    };
    let token = raw.trim();
    if token.is_empty() {
        anyhow::bail!(
            "no token was given: pipe it on stdin (e.g. `printenv TOKEN | mcpist account add {service} {name}`) or type it at the prompt"
        );
    }
    if token.contains(['\n', '\r']) {
        anyhow::bail!("the token spans several lines; pipe only the token");
    }
    Ok(SecretString::from(token.to_owned()))
}

/// The innermost message of a broker error, for a one-line status.
fn root_reason(error: &BrokerError) -> String {
    match error {
        BrokerError::Secret { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}
