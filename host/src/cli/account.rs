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

use crate::broker::{AccountKind, Broker, MAX_SECRET_BYTES, Revocation, SecretTextError, expiry};
use crate::config::Config;
use crate::exchanger::connect::SignIn;
use crate::exchanger::unix_now;

pub(super) async fn add(
    config: &Config,
    service: &str,
    name: &str,
    make_default: bool,
) -> anyhow::Result<ExitCode> {
    let broker = broker(config);
    let vault = broker.vault_for(service)?;
    let secret = if vault.stores_secrets() {
        Some(read_secret(
            "token",
            &format!("Token for {service} account `{name}`: "),
            &format!("printenv TOKEN | mcpist account add {service} {name}"),
        )?)
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
        let status = broker.status(account).await;
        let default = accounts.default_for(&account.service) == Some(account.name.as_str());
        rows.push([
            account.service.clone(),
            account.name.clone(),
            if default { "yes" } else { "-" }.to_owned(),
            account.kind.label().to_owned(),
            account.vault.clone(),
            account.reference.clone(),
            status.expires,
            status.health.label(),
        ]);
    }
    super::print_table(
        out,
        &[
            "SERVICE",
            "ACCOUNT",
            "DEFAULT",
            "KIND",
            "VAULT",
            "REFERENCE",
            "EXPIRES",
            "SECRET",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What `account remove` does at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Revoke {
    /// Revoke, and keep the account if that fails.
    Required,
    /// Revoke, and remove the account even if that fails (`--force`).
    TryThenRemove,
    /// Do not revoke (`--keep-remote`).
    Skip,
}

pub(super) async fn remove(
    config: &Config,
    service: &str,
    name: &str,
    revoke: Revoke,
) -> anyhow::Result<ExitCode> {
    let broker = broker(config);
    let found = Broker::resolve(&broker.accounts()?, service, Some(name))?;
    let out = &mut std::io::stdout().lock();
    if found.kind == AccountKind::OAuth && revoke != Revoke::Skip {
        match broker.revoke(&found).await {
            Ok(Revocation::Revoked(n)) => {
                writeln!(
                    out,
                    "Revoked {n} token(s) of {service} account `{name}` at the provider."
                )?;
            }
            Ok(Revocation::NotOAuth) => {}
            Err(e) if revoke == Revoke::Required => anyhow::bail!(
                "{e}\nThe account is kept. Try again later, remove it anyway with `mcpist account remove {service} {name} --force`, or without contacting the provider with `--keep-remote` (then revoke MCPist's access in the provider's settings)."
            ),
            Err(e) => writeln!(
                out,
                "Could not revoke the tokens at the provider ({e}); removing the account anyway (--force). Revoke MCPist's access in the provider's settings."
            )?,
        }
    }
    let account = broker.remove(service, name).await?;
    let accounts = broker.accounts()?;
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

/// How `account connect` signs in.
pub(super) struct ConnectOptions {
    pub make_default: bool,
    pub open_browser: bool,
    pub device: bool,
    pub timeout: std::time::Duration,
}

pub(super) async fn connect(
    config: &Config,
    service: &str,
    name: &str,
    how: ConnectOptions,
) -> anyhow::Result<ExitCode> {
    let broker = broker(config);
    // Refuse a bad name before the owner signs in, not after.
    crate::broker::check_names(service, name)?;
    let exchanger = broker.exchanger();
    let app = exchanger.app(service)?;
    let client_secret = broker.client_secret(app).await?;
    let tokens = if how.device {
        let device = exchanger
            .device_authorization(app, client_secret.as_ref())
            .await?;
        let mut err = std::io::stderr().lock();
        writeln!(
            err,
            "To connect {service} account `{name}`, open {} and enter the code {} (waiting up to {} s).",
            device.verification_uri, device.user_code, device.expires_in
        )?;
        if let Some(complete) = &device.verification_uri_complete {
            writeln!(err, "Or open {complete}")?;
        }
        drop(err);
        exchanger
            .poll_device(app, client_secret.as_ref(), &device)
            .await?
    } else {
        let again = format!("run `mcpist account connect {service} {name}` again");
        let sign_in = SignIn::start(exchanger, app, again).await?;
        writeln!(
            std::io::stderr().lock(),
            "To connect {service} account `{name}`, sign in at this page (waiting up to {} s):\n{}",
            how.timeout.as_secs(),
            sign_in.url()
        )?;
        if how.open_browser {
            open_browser(sign_in.url().as_str());
        }
        sign_in
            .finish(exchanger, app, client_secret.as_ref(), how.timeout)
            .await?
    };
    // Tokens of an account connected before under this name: revoked once
    // the new ones are stored, so a reconnect leaves no grant behind.
    let previous = match Broker::resolve(&broker.accounts()?, service, Some(name)) {
        Ok(account) => broker.stored_tokens(&account).await.ok().flatten(),
        Err(_) => None,
    };
    let account = broker
        .add_connected(service, name, &tokens, how.make_default)
        .await?;
    let accounts = broker.accounts()?;
    let out = &mut std::io::stdout().lock();
    writeln!(
        out,
        "Connected {service} account `{name}`; its tokens are stored in vault `{}` and renewed by MCPist.",
        account.vault
    )?;
    match &tokens.scope {
        Some(scope) => writeln!(
            out,
            "Granted: {scope}; the access token expires {}.",
            expiry(&tokens, unix_now())
        )?,
        None => writeln!(
            out,
            "The access token expires {}.",
            expiry(&tokens, unix_now())
        )?,
    }
    if tokens.refresh_token.is_none() && tokens.expires_at.is_some() {
        writeln!(
            out,
            "The provider issued no refresh token: connect again when the access token expires (some providers issue one only when asked for offline access)."
        )?;
    }
    if let Some(previous) = previous {
        match broker.revoke_tokens(service, &previous).await {
            Ok(_) => writeln!(out, "The tokens it replaced were revoked at the provider.")?,
            Err(e) => writeln!(
                out,
                "The tokens it replaced could not be revoked ({e}); revoke them in the provider's settings if they matter."
            )?,
        }
    }
    if accounts.default_for(service) == Some(name) {
        writeln!(out, "It is the default {service} account.")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn store_client_secret(
    config: &Config,
    service: &str,
) -> anyhow::Result<ExitCode> {
    let broker = broker(config);
    // A secret for an app that is not configured would sit unused.
    broker.exchanger().app(service)?;
    let secret = read_secret(
        "client secret",
        &format!("Client secret of the {service} OAuth app: "),
        &format!("printenv CLIENT_SECRET | mcpist oauth secret {service}"),
    )?;
    let vault = broker.store_client_secret(service, secret).await?;
    writeln!(
        std::io::stdout().lock(),
        "Stored the client secret of the {service} OAuth app in vault `{vault}`."
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Open `url` in the desktop's browser when there is one; the URL is
/// printed either way.
pub(super) fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        "xdg-open"
    } else {
        return;
    };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        tracing::debug!(opener, error = %e, "cannot open a browser");
    }
}

/// A secret (`what`) from stdin, or from a prompt that does not echo.
/// `example` shows how to pipe it.
fn read_secret(what: &str, prompt: &str, example: &str) -> anyhow::Result<SecretString> {
    let stdin = std::io::stdin();
    let raw = if stdin.is_terminal() {
        Zeroizing::new(
            rpassword::prompt_password(prompt)
                .context("cannot read the secret from the terminal")?,
        )
    } else {
        let mut text = Zeroizing::new(String::new());
        stdin
            .lock()
            .take(MAX_SECRET_BYTES as u64 + 1)
            .read_to_string(&mut text)
            .context("cannot read the secret from stdin (it must be UTF-8 text)")?;
        text
    };
    crate::broker::secret_from_text(&raw).map_err(|e| match e {
        SecretTextError::Empty => anyhow::anyhow!(
            "no {what} was given: pipe it on stdin (e.g. `{example}`) or type it at the prompt"
        ),
        e => anyhow::anyhow!("the {what} was refused: {e}; pipe only the {what}"),
    })
}
