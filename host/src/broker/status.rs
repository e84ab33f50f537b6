//! Where each account stands, for the owner's listings (`account list`, the
//! console): whether its secret is there and when its token expires. Never
//! the secret itself.

use super::{Account, AccountKind, Broker, BrokerError, VaultError};
use crate::exchanger::{TokenSet, TokenState, unix_now};

/// Whether an account can act.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Its secret is in its vault.
    Ok,
    /// Its vault has no secret at its reference.
    SecretMissing,
    /// Its OAuth grant ended: it must be connected again.
    Reconnect,
    /// The vault could not be asked (down, or refused).
    Unavailable(String),
}

impl Health {
    /// In a few words, as listings show it.
    pub fn label(&self) -> String {
        match self {
            Health::Ok => "ok".to_owned(),
            Health::SecretMissing => "secret missing".to_owned(),
            Health::Reconnect => "connect again".to_owned(),
            Health::Unavailable(reason) => format!("unavailable: {reason}"),
        }
    }
}

/// An account's state, as listings show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStatus {
    /// Whether it can act.
    pub health: Health,
    /// When its access token expires, in words (`-` for a plain token).
    pub expires: String,
}

impl Broker {
    /// Where `account` stands. Checking that a secret is there reads it; it
    /// is dropped (and zeroized) at once. An OAuth account's tokens are read
    /// as stored, never renewed by looking at them.
    pub async fn status(&self, account: &Account) -> AccountStatus {
        let (found, expires) = match account.kind {
            AccountKind::Token => (self.secret(account).await.map(drop), "-".to_owned()),
            AccountKind::OAuth => match self.token_set(account, false).await {
                Ok(set) => (Ok(()), expiry(&set, unix_now())),
                Err(e) => (Err(e), "-".to_owned()),
            },
        };
        let health = match found {
            Ok(()) => Health::Ok,
            Err(BrokerError::Secret {
                source: VaultError::NotFound { .. },
                ..
            }) => Health::SecretMissing,
            Err(BrokerError::Reconnect { .. }) => Health::Reconnect,
            Err(BrokerError::Secret { source, .. }) => Health::Unavailable(source.to_string()),
            Err(other) => Health::Unavailable(other.to_string()),
        };
        AccountStatus { health, expires }
    }
}

/// When an access token expires, in words.
pub fn expiry(tokens: &TokenSet, now: i64) -> String {
    let Some(at) = tokens.expires_at else {
        return "never".to_owned();
    };
    let left = at - now;
    let span = |secs: i64| match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    };
    match tokens.state(now) {
        TokenState::NeedsReconnect => "-".to_owned(),
        _ if left > 0 => format!("in {}", span(left)),
        TokenState::Expired => format!("expired {} ago", span(-left)),
        _ => "due for renewal".to_owned(),
    }
}
