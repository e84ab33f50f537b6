//! OAuth accounts in the broker: the access token a call sends is renewed
//! before it expires, or once when the service refused it, with one renewal
//! at a time per account (calls that arrive meanwhile wait and use its
//! result), across processes too, since every client may start its own
//! `mcpist`. A rotated refresh token is written to the vault before the new
//! access token is used: a crash after the provider spent the old one never
//! leaves the account holding only the spent one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use super::{Account, AccountKind, Broker, BrokerError, VaultError};
use crate::exchanger::{OAuthApp, TokenSet, unix_now};

/// The service name under which OAuth apps' client secrets are kept in a
/// vault (reference `oauth_app/SERVICE`); no real service may take it.
pub const OAUTH_APP_SERVICE: &str = "oauth_app";

/// What `mcpist account remove` did at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// A static token: there is nothing MCPist could revoke.
    NotOAuth,
    /// The stored tokens were revoked (their number).
    Revoked(usize),
}

/// (service, account) → the lock its renewals take in this process.
type AccountLocks = HashMap<(String, String), Arc<tokio::sync::Mutex<()>>>;

/// One lock per account, in this process and on disk.
pub(super) struct Renewals {
    lock_dir: PathBuf,
    in_process: std::sync::Mutex<AccountLocks>,
}

/// Held while an account's tokens are renewed.
struct RenewalGuard {
    _in_process: tokio::sync::OwnedMutexGuard<()>,
    /// Unlocked when closed.
    _file: std::fs::File,
}

impl Renewals {
    pub(super) fn new(accounts_file: &Path) -> Renewals {
        let home = accounts_file.parent().unwrap_or(Path::new("."));
        Renewals {
            lock_dir: home.join("locks"),
            in_process: std::sync::Mutex::new(HashMap::new()),
        }
    }

    async fn lock(&self, account: &Account) -> Result<RenewalGuard, BrokerError> {
        let key = (account.service.clone(), account.name.clone());
        let mutex = self
            .in_process
            .lock()
            .expect("renewal locks")
            .entry(key)
            .or_default()
            .clone();
        let in_process = mutex.lock_owned().await;
        // Service and account names are checked to be file-name safe.
        let path = self
            .lock_dir
            .join(format!("oauth-{}-{}.lock", account.service, account.name));
        let unavailable = |e: std::io::Error| VaultError::Unavailable {
            vault: account.vault.clone(),
            reason: format!("cannot lock {} for the renewal: {e}", path.display()),
        };
        std::fs::create_dir_all(&self.lock_dir).map_err(unavailable)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(unavailable)?;
        let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .expect("the lock task does not panic")
            .map_err(unavailable)?;
        Ok(RenewalGuard {
            _in_process: in_process,
            _file: file,
        })
    }
}

/// Whether the stored set must be renewed: it expires within the skew, or
/// it still holds the token the service just refused.
fn needs_renewal(set: &TokenSet, rejected: Option<&SecretString>, app: &OAuthApp) -> bool {
    match rejected {
        Some(rejected) => set.access_token.expose_secret() == rejected.expose_secret(),
        None => set.due(unix_now(), app.refresh_skew),
    }
}

impl Broker {
    /// The access token of an OAuth account, renewed first when it is due
    /// or when it is `rejected` (the one a service just answered 401 to).
    pub(super) async fn access_token(
        &self,
        account: &Account,
        rejected: Option<&SecretString>,
    ) -> Result<SecretString, BrokerError> {
        let app = self.exchanger.app(&account.service)?;
        let set = self.token_set(account, false).await?;
        if !needs_renewal(&set, rejected, app) {
            return Ok(set.access_token);
        }
        let _guard = self.renewals.lock(account).await?;
        // Another call, or another process, may have renewed it while this
        // one waited: read it again, past any cache.
        let set = self.token_set(account, true).await?;
        if !needs_renewal(&set, rejected, app) {
            return Ok(set.access_token);
        }
        let reconnect = || BrokerError::Reconnect {
            service: account.service.clone(),
            account: account.name.clone(),
        };
        let Some(refresh_token) = set.refresh_token.clone() else {
            // Nothing renews it: usable until it expires, then only a new
            // connect helps.
            return if rejected.is_some() || set.expired(unix_now()) {
                Err(reconnect())
            } else {
                Ok(set.access_token)
            };
        };
        let client_secret = self.client_secret(app).await?;
        let vault = self.vault_of(account)?;
        match self
            .exchanger
            .refresh(app, client_secret.as_ref(), &refresh_token)
            .await
        {
            Ok(fresh) => {
                let renewed = set.renewed(fresh);
                vault
                    .put(&account.reference, renewed.to_secret())
                    .await
                    .map_err(|source| BrokerError::Secret {
                        service: account.service.clone(),
                        account: account.name.clone(),
                        source,
                    })?;
                tracing::info!(service = %account.service, account = %account.name, "access token renewed");
                Ok(renewed.access_token)
            }
            Err(e) if e.is_invalid_grant() => {
                tracing::warn!(service = %account.service, account = %account.name, error = %e, "the provider refused the refresh token; the account must be connected again");
                if let Err(e) = vault
                    .put(&account.reference, set.refused().to_secret())
                    .await
                {
                    tracing::warn!(service = %account.service, account = %account.name, error = %e, "cannot mark the account as needing a new connect");
                }
                Err(reconnect())
            }
            // A provider that is down does not stop a token that still
            // works: the next call tries again.
            Err(e) if rejected.is_none() && !set.expired(unix_now()) => {
                tracing::warn!(service = %account.service, account = %account.name, error = %e, "cannot renew the access token yet; using it until it expires");
                Ok(set.access_token)
            }
            Err(source) => Err(BrokerError::Renewal {
                service: account.service.clone(),
                account: account.name.clone(),
                source: Box::new(source),
            }),
        }
    }

    /// After a service answered 401 to `rejected`: a renewed access token
    /// for an OAuth account (once, however many calls saw the 401), `None`
    /// for a static token, which nothing can renew.
    pub async fn renew_rejected(
        &self,
        account: &Account,
        rejected: &SecretString,
    ) -> Result<Option<SecretString>, BrokerError> {
        match account.kind {
            AccountKind::Token => Ok(None),
            AccountKind::OAuth => self.access_token(account, Some(rejected)).await.map(Some),
        }
    }

    /// The stored token set of an OAuth account; `fresh` reads past the
    /// vault's cache.
    pub async fn token_set(&self, account: &Account, fresh: bool) -> Result<TokenSet, BrokerError> {
        let vault = self.vault_of(account)?;
        let stored = if fresh {
            vault.get_fresh(&account.reference).await
        } else {
            vault.get(&account.reference).await
        }
        .map_err(|source| BrokerError::Secret {
            service: account.service.clone(),
            account: account.name.clone(),
            source,
        })?;
        let set = TokenSet::parse(&stored).ok_or_else(|| BrokerError::NotATokenSet {
            service: account.service.clone(),
            account: account.name.clone(),
        })?;
        if set.needs_reconnect {
            return Err(BrokerError::Reconnect {
                service: account.service.clone(),
                account: account.name.clone(),
            });
        }
        Ok(set)
    }

    /// The client secret of `app`, from its service's vault; `None` for a
    /// public client.
    pub async fn client_secret(&self, app: &OAuthApp) -> Result<Option<SecretString>, BrokerError> {
        if !app.needs_secret() {
            return Ok(None);
        }
        let vault = self.vault_for(&app.service)?;
        let reference = vault.reference_for(OAUTH_APP_SERVICE, &app.service);
        match vault.get(&reference).await {
            Ok(secret) => Ok(Some(secret)),
            Err(VaultError::NotFound { .. }) => Err(BrokerError::NoClientSecret {
                service: app.service.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Keep the client secret of `service`'s OAuth app in the service's
    /// vault.
    pub async fn store_client_secret(
        &self,
        service: &str,
        secret: SecretString,
    ) -> Result<String, BrokerError> {
        self.exchanger.app(service)?;
        let vault = self.vault_for(service)?;
        vault
            .put(&vault.reference_for(OAUTH_APP_SERVICE, service), secret)
            .await?;
        Ok(vault.name().to_owned())
    }

    /// Add (or replace) an account connected by OAuth.
    pub async fn add_connected(
        &self,
        service: &str,
        name: &str,
        tokens: &TokenSet,
        make_default: bool,
    ) -> Result<Account, BrokerError> {
        self.store_account(
            service,
            name,
            AccountKind::OAuth,
            Some(tokens.to_secret()),
            make_default,
        )
        .await
    }

    /// Revoke an OAuth account's tokens at its provider (RFC 7009): the
    /// refresh token first (which ends the grant at most providers), then
    /// the access token. A token set already gone has nothing to revoke.
    pub async fn revoke(&self, account: &Account) -> Result<Revocation, BrokerError> {
        match self.stored_tokens(account).await? {
            None if account.kind != AccountKind::OAuth => Ok(Revocation::NotOAuth),
            None => Ok(Revocation::Revoked(0)),
            Some(set) => self.revoke_tokens(&account.service, &set).await,
        }
    }

    /// An OAuth account's token set as stored, even one marked for a new
    /// connect; `None` for a static token or a secret already gone.
    pub async fn stored_tokens(&self, account: &Account) -> Result<Option<TokenSet>, BrokerError> {
        if account.kind != AccountKind::OAuth {
            return Ok(None);
        }
        match self.vault_of(account)?.get_fresh(&account.reference).await {
            Ok(stored) => Ok(TokenSet::parse(&stored)),
            Err(VaultError::NotFound { .. }) => Ok(None),
            Err(source) => Err(BrokerError::Secret {
                service: account.service.clone(),
                account: account.name.clone(),
                source,
            }),
        }
    }

    /// Revoke a token set of `service` at its provider.
    pub async fn revoke_tokens(
        &self,
        service: &str,
        set: &TokenSet,
    ) -> Result<Revocation, BrokerError> {
        let app = self.exchanger.app(service)?;
        let client_secret = self.client_secret(app).await?;
        let mut revoked = 0;
        if let Some(refresh_token) = &set.refresh_token {
            self.exchanger
                .revoke(app, client_secret.as_ref(), refresh_token, "refresh_token")
                .await?;
            revoked += 1;
        }
        self.exchanger
            .revoke(
                app,
                client_secret.as_ref(),
                &set.access_token,
                "access_token",
            )
            .await?;
        Ok(Revocation::Revoked(revoked + 1))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use axum::Json;
    use axum::extract::State;
    use axum::http::StatusCode;
    use secrecy::ExposeSecret;
    use serde_json::{Value, json};

    use super::super::{BrokerSettings, DEFAULT_VAULT, VaultBackend};
    use super::*;
    use crate::exchanger::{ClientAuth, EndpointSource, Endpoints};

    /// A token endpoint that rotates refresh tokens and refuses a spent
    /// one, as strict providers do; slow enough that concurrent renewals
    /// would overlap.
    #[derive(Default)]
    struct Provider {
        /// The refresh token it accepts now, and how many refreshes it did.
        state: Mutex<(String, usize)>,
    }

    async fn token(
        State(provider): State<Arc<Provider>>,
        body: String,
    ) -> (StatusCode, Json<Value>) {
        let presented = url::form_urlencoded::parse(body.as_bytes())
            .find(|(k, _)| k == "refresh_token")
            .map(|(_, v)| v.into_owned());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut state = provider.state.lock().unwrap();
        if presented.as_deref() != Some(state.0.as_str()) {
            return (
                StatusCode::BAD_REQUEST,
                Json(
                    json!({"error": "invalid_grant", "error_description": "refresh token already used"}),
                ),
            );
        }
        state.1 += 1;
        state.0 = format!("rt-{}", state.1 + 1);
        let answer = json!({"access_token": format!("at-{}", state.1 + 1), "token_type": "Bearer",
                            "expires_in": 3600, "refresh_token": state.0});
        (StatusCode::OK, Json(answer))
    }

    fn broker(dir: &Path, token_url: &str) -> Broker {
        let app = OAuthApp {
            service: "google".into(),
            client_id: "app".into(),
            endpoints: EndpointSource::Given(Arc::new(Endpoints {
                issuer: None,
                authorization: None,
                token: url::Url::parse(token_url).unwrap(),
                revocation: None,
                device_authorization: None,
            })),
            scopes: Vec::new(),
            extra_params: Vec::new(),
            client_auth: ClientAuth::None,
            resource: None,
            redirect_port: 0,
            refresh_skew: Duration::from_secs(60),
        };
        let vaults = BTreeMap::from([(
            DEFAULT_VAULT.to_owned(),
            VaultBackend::File {
                path: dir.join("vault.enc"),
                key_file: dir.join("vault.key"),
            },
        )]);
        Broker::new(
            &BrokerSettings {
                accounts_file: dir.join("accounts.toml"),
                vaults,
                routes: BTreeMap::new(),
                oauth: BTreeMap::from([("google".to_owned(), app)]),
            },
            None,
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_brokers_renewing_at_once_make_one_refresh_and_agree_on_its_token() {
        let provider = Arc::new(Provider {
            state: Mutex::new(("rt-1".to_owned(), 0)),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let router = axum::Router::new()
            .route("/token", axum::routing::post(token))
            .with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });

        let dir = tempfile::tempdir().unwrap();
        // Two brokers on one home share nothing in memory: like two
        // `mcpist` processes started by two clients.
        let (first, second) = (
            Arc::new(broker(dir.path(), &url)),
            Arc::new(broker(dir.path(), &url)),
        );
        let expired = TokenSet::issued(
            SecretString::from("at-1"),
            "Bearer".into(),
            Some(SecretString::from("rt-1")),
            Some(-10),
            None,
            unix_now(),
        );
        let account = first
            .add_connected("google", "work", &expired, false)
            .await
            .unwrap();

        let mut calls = Vec::new();
        for i in 0..20 {
            let broker = if i % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let account = account.clone();
            calls.push(tokio::spawn(async move { broker.secret(&account).await }));
        }
        for call in calls {
            assert_eq!(call.await.unwrap().unwrap().expose_secret(), "at-2");
        }
        assert_eq!(provider.state.lock().unwrap().1, 1);
        let stored = second.token_set(&account, true).await.unwrap();
        assert_eq!(stored.refresh_token.unwrap().expose_secret(), "rt-2");

        // The token the service refused is renewed once, however many
        // calls saw the refusal.
        let rejected = SecretString::from("at-2");
        let (a, b) = tokio::join!(
            first.renew_rejected(&account, &rejected),
            second.renew_rejected(&account, &rejected)
        );
        assert_eq!(a.unwrap().unwrap().expose_secret(), "at-3");
        assert_eq!(b.unwrap().unwrap().expose_secret(), "at-3");
        assert_eq!(provider.state.lock().unwrap().1, 2);

        // A spent refresh token (a vault restored from a backup): the
        // account must be connected again, and says so.
        first
            .add_connected("google", "work", &expired, false)
            .await
            .unwrap();
        let error = second.secret(&account).await.unwrap_err().to_string();
        assert_eq!(
            error,
            "account `work` of `google` must be connected again: mcpist account connect google work"
        );
        assert!(matches!(
            first.secret(&account).await,
            Err(BrokerError::Reconnect { .. })
        ));
        assert_eq!(provider.state.lock().unwrap().1, 2);
    }
}
