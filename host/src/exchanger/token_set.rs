//! What an OAuth account keeps in its vault: the token set the provider
//! issued, as one JSON secret, so that every vault kind can hold it and the
//! refresh token is replaced in the same write as the access token.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Marks a vault entry as a token set (and its layout's version), so that a
/// static token is never mistaken for one.
const FORMAT: u32 = 1;

/// The tokens of one OAuth account.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenSet {
    #[serde(rename = "mcpist_oauth")]
    format: u32,
    /// What calls send.
    pub access_token: SecretString,
    /// As the provider named it (`Bearer`).
    pub token_type: String,
    /// What renews the access token; absent when the provider gave none,
    /// or once it was refused.
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
    /// When the access token stops working (Unix seconds), if the
    /// provider said.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// The scopes granted, as the provider listed them.
    #[serde(default)]
    pub scope: Option<String>,
    /// The provider refused the refresh token: only a new connect helps.
    #[serde(default)]
    pub needs_reconnect: bool,
}

/// The same fields, borrowed, for writing: a secret is exposed only into a
/// buffer that is zeroized when dropped.
#[derive(Serialize)]
struct Stored<'a> {
    mcpist_oauth: u32,
    access_token: &'a str,
    token_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    needs_reconnect: bool,
}

/// Where an account's tokens stand, for `mcpist account list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenState {
    /// Usable now (or renewable when it is not).
    Ok,
    /// Expired, and nothing can renew it.
    Expired,
    /// The provider refused the refresh token.
    NeedsReconnect,
}

impl TokenSet {
    /// A token set as a provider's token endpoint gave it, `now` being the
    /// Unix time it was received.
    pub fn issued(
        access_token: SecretString,
        token_type: String,
        refresh_token: Option<SecretString>,
        expires_in: Option<i64>,
        scope: Option<String>,
        now: i64,
    ) -> TokenSet {
        TokenSet {
            format: FORMAT,
            access_token,
            token_type,
            refresh_token,
            expires_at: expires_in.map(|secs| now.saturating_add(secs)),
            scope,
            needs_reconnect: false,
        }
    }

    /// Read a vault entry; `None` when it is not a token set (a static
    /// token).
    pub fn parse(secret: &SecretString) -> Option<TokenSet> {
        let text = secret.expose_secret();
        if !text.starts_with('{') {
            return None;
        }
        serde_json::from_str::<TokenSet>(text)
            .ok()
            .filter(|set| set.format == FORMAT)
    }

    /// The vault entry.
    pub fn to_secret(&self) -> SecretString {
        let stored = Stored {
            mcpist_oauth: FORMAT,
            access_token: self.access_token.expose_secret(),
            token_type: &self.token_type,
            refresh_token: self.refresh_token.as_ref().map(|t| t.expose_secret()),
            expires_at: self.expires_at,
            scope: self.scope.as_deref(),
            needs_reconnect: self.needs_reconnect,
        };
        let text = Zeroizing::new(serde_json::to_string(&stored).expect("plain strings serialize"));
        SecretString::from(text.as_str())
    }

    /// Whether the access token should be renewed at `now`: it expires
    /// within `skew`.
    pub fn due(&self, now: i64, skew: std::time::Duration) -> bool {
        self.expires_at
            .is_some_and(|at| at.saturating_sub(now) <= skew.as_secs() as i64)
    }

    /// Whether the access token has expired at `now`.
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// A renewed set: the new access token, and the new refresh token if
    /// the provider rotated it (else the one it keeps accepting).
    pub fn renewed(self, fresh: TokenSet) -> TokenSet {
        TokenSet {
            refresh_token: fresh.refresh_token.or(self.refresh_token),
            scope: fresh.scope.or(self.scope),
            ..fresh
        }
    }

    /// The set after the provider refused its refresh token: the spent
    /// refresh token is dropped, the access token kept for revocation.
    pub fn refused(self) -> TokenSet {
        TokenSet {
            refresh_token: None,
            needs_reconnect: true,
            ..self
        }
    }

    /// Where it stands at `now`.
    pub fn state(&self, now: i64) -> TokenState {
        if self.needs_reconnect {
            TokenState::NeedsReconnect
        } else if self.expired(now) && self.refresh_token.is_none() {
            TokenState::Expired
        } else {
            TokenState::Ok
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn set(refresh: Option<&str>, expires_in: Option<i64>) -> TokenSet {
        TokenSet::issued(
            SecretString::from("at-1"),
            "Bearer".into(),
            refresh.map(SecretString::from),
            expires_in,
            Some("calendar.read".into()),
            1_000,
        )
    }

    #[test]
    fn a_token_set_round_trips_and_a_static_token_is_not_one() {
        let stored = set(Some("rt-1"), Some(3600)).to_secret();
        let back = TokenSet::parse(&stored).unwrap();
        assert_eq!(back.access_token.expose_secret(), "at-1");
        assert_eq!(back.refresh_token.unwrap().expose_secret(), "rt-1");
        assert_eq!(back.expires_at, Some(4_600));
        assert!(TokenSet::parse(&SecretString::from("ghp_abc")).is_none());
        assert!(TokenSet::parse(&SecretString::from(r#"{"access_token":"x"}"#)).is_none());
    }

    #[test]
    fn renewal_is_due_within_the_skew_and_keeps_an_unrotated_refresh_token() {
        let old = set(Some("rt-1"), Some(3600));
        assert!(!old.due(4_600 - 61, Duration::from_secs(60)));
        assert!(old.due(4_600 - 60, Duration::from_secs(60)));
        assert!(!set(None, None).due(i64::MAX, Duration::from_secs(60)));
        let fresh = TokenSet::issued(
            SecretString::from("at-2"),
            "Bearer".into(),
            None,
            Some(60),
            None,
            5_000,
        );
        let renewed = old.renewed(fresh);
        assert_eq!(renewed.access_token.expose_secret(), "at-2");
        assert_eq!(renewed.refresh_token.unwrap().expose_secret(), "rt-1");
        assert_eq!(renewed.scope.as_deref(), Some("calendar.read"));
    }

    #[test]
    fn a_refused_set_needs_a_new_connect() {
        let refused = set(Some("rt-1"), Some(10)).refused();
        assert_eq!(refused.state(0), TokenState::NeedsReconnect);
        let back = TokenSet::parse(&refused.to_secret()).unwrap();
        assert!(back.needs_reconnect && back.refresh_token.is_none());
        assert_eq!(set(None, Some(10)).state(2_000), TokenState::Expired);
        assert_eq!(set(Some("r"), Some(10)).state(2_000), TokenState::Ok);
    }
}
