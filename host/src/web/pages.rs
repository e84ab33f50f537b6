//! The console's pages and the forms they post. Each action is one call to
//! the library operation the command line uses; the answer is the page
//! again, with what happened said at its top.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Console, Owner, PREFIX, PendingSignIn, Posted};
use crate::audit::Outcome;
use crate::audit::read::Filter;
use crate::broker::{AccountKind, Broker, Revocation};
use crate::exchanger::connect::SignIn;
use crate::registry::{self, Approval, Lock, ModuleState, Scan, short_hash};

/// Calls shown per audit page.
const CALLS_PER_PAGE: usize = 50;

/// How long a sign-in started from the console may take.
const SIGN_IN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10 * 60);

pub(super) fn routes() -> axum::Router<Arc<Console>> {
    axum::Router::new()
        .route("/", get(super::to_modules))
        .route("/login", get(login))
        .route("/logout", post(logout))
        .route("/assets/console.css", get(stylesheet))
        .route("/assets/console.js", get(script))
        .route("/modules", get(modules))
        .route("/modules/state", get(modules_state))
        .route("/modules/approve", post(approve))
        .route("/modules/reject", post(reject))
        .route("/modules/use", post(use_version))
        .route("/accounts", get(accounts))
        .route("/accounts/add", post(add_account))
        .route("/accounts/default", post(default_account))
        .route("/accounts/remove", post(remove_account))
        .route("/accounts/connect", post(connect_account))
        .route("/oauth/callback", get(oauth_callback))
        .route("/clients", get(clients))
        .route("/clients/add", post(add_client))
        .route("/clients/remove", post(remove_client))
        .route("/audit", get(audit))
}

// ---------------------------------------------------------------- layout

/// What every page's frame shows.
struct Layout {
    prefix: &'static str,
    page: &'static str,
    nav: [(&'static str, &'static str); 4],
    csrf: String,
    notice: Option<String>,
    error: Option<String>,
    /// The modules page's [`fingerprint`], for the script that reloads it.
    fingerprint: String,
}

/// What happened, for the top of the page.
#[derive(Default)]
struct Said {
    notice: Option<String>,
    error: Option<String>,
}

impl Said {
    fn notice(text: impl Into<String>) -> Said {
        Said {
            notice: Some(text.into()),
            error: None,
        }
    }

    fn error(text: impl std::fmt::Display) -> Said {
        Said {
            notice: None,
            error: Some(text.to_string()),
        }
    }
}

impl Layout {
    fn new(owner: &Owner, page: &'static str, said: Said) -> Layout {
        Layout {
            prefix: PREFIX,
            page,
            nav: [
                ("modules", "Modules"),
                ("accounts", "Accounts"),
                ("clients", "Clients"),
                ("audit", "Audit"),
            ],
            csrf: owner.session.csrf.clone(),
            notice: said.notice,
            error: said.error,
            fingerprint: String::new(),
        }
    }
}

/// A rendered page with `status`.
fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("cannot render a console page: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot render this page").into_response()
        }
    }
}

/// The status of an answer that says `said`.
fn status_of(said: &Said, failure: StatusCode) -> StatusCode {
    if said.error.is_some() {
        failure
    } else {
        StatusCode::OK
    }
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage<'a> {
    prefix: &'static str,
    class: &'static str,
    message: &'a str,
}

/// A page that only says why the request was refused.
pub(super) fn refusal(status: StatusCode, text: &str) -> Response {
    message(status, "error", text)
}

/// A page outside the signed-in console that says one thing.
fn message(status: StatusCode, class: &'static str, message: &str) -> Response {
    page(
        status,
        &MessagePage {
            prefix: PREFIX,
            class,
            message,
        },
    )
}

async fn stylesheet() -> Response {
    asset("text/css", include_str!("assets/console.css"))
}

async fn script() -> Response {
    asset("text/javascript", include_str!("assets/console.js"))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

// ---------------------------------------------------------------- login

#[derive(Deserialize)]
struct LoginQuery {
    #[serde(default)]
    token: String,
}

async fn login(State(console): State<Arc<Console>>, Query(query): Query<LoginQuery>) -> Response {
    let token = Zeroizing::new(query.token);
    if !console.links.redeem(&token) {
        tracing::warn!("refused a console login link (used, expired or never issued)");
        return refusal(
            StatusCode::FORBIDDEN,
            "This login link was already used or has expired. Run `mcpist console link` for a new one.",
        );
    }
    let cookie = console.sessions.open();
    tracing::info!("the owner signed in to the console");
    // A session cookie (no Max-Age): the browser forgets it when it
    // closes; the server ends it after the idle timeout.
    let mut response = super::see_other(&format!("{PREFIX}/modules"));
    response
        .headers_mut()
        .insert(header::SET_COOKIE, console.set_cookie(&cookie));
    response
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
struct NoFields {}

async fn logout(
    State(console): State<Arc<Console>>,
    Posted { owner, .. }: Posted<NoFields>,
) -> Response {
    console.sessions.close(&owner.session.id);
    let mut response = message(
        StatusCode::OK,
        "notice",
        "You are logged out of the console.",
    );
    response
        .headers_mut()
        .insert(header::SET_COOKIE, console.set_cookie(""));
    response
}

// ---------------------------------------------------------------- modules

#[derive(Template)]
#[template(path = "console/modules.html")]
struct ModulesPage {
    layout: Layout,
    plugins_dir: String,
    lock_file: String,
    modules: Vec<ModuleRow>,
    reviews: Vec<Review>,
    versions: Vec<Versions>,
}

struct ModuleRow {
    name: String,
    file: String,
    version: String,
    state: &'static str,
    detail: String,
    sha256: String,
    short_sha256: String,
    /// Host and the owner's rule for it.
    hosts: Vec<(String, String)>,
    /// Tool and its flags.
    tools: Vec<(String, Vec<&'static str>)>,
}

struct Review {
    name: String,
    file: String,
    state: &'static str,
    sha256: String,
    /// CSS class and text of each line of the diff.
    lines: Vec<(&'static str, String)>,
    approvable: bool,
    flagged: bool,
}

struct Versions {
    name: String,
    pins: Vec<PinnedVersion>,
}

struct PinnedVersion {
    version: String,
    file: String,
    sha256: String,
    short_sha256: String,
    tools: String,
    hosts: String,
    active: bool,
}

impl Console {
    async fn scan(&self) -> anyhow::Result<(Lock, Scan)> {
        let lock = Lock::load(&self.config.lock_file)?;
        let scan = registry::scan(
            &self.runtime,
            &self.config.plugins_dir,
            &lock,
            &self.config.guards,
        )
        .await?;
        Ok((lock, scan))
    }

    async fn modules_page(&self, owner: &Owner, said: Said, failure: StatusCode) -> Response {
        let (lock, scan) = match self.scan().await {
            Ok(found) => found,
            Err(e) => {
                let said = Said::error(format!("{e:#}"));
                return self.render_modules(
                    owner,
                    said,
                    &Lock::default(),
                    &Scan::default(),
                    StatusCode::INTERNAL_SERVER_ERROR,
                );
            }
        };
        let status = status_of(&said, failure);
        self.render_modules(owner, said, &lock, &scan, status)
    }

    fn render_modules(
        &self,
        owner: &Owner,
        said: Said,
        lock: &Lock,
        scan: &Scan,
        status: StatusCode,
    ) -> Response {
        let mut layout = Layout::new(owner, "modules", said);
        layout.fingerprint = fingerprint(&self.config);
        let modules = scan
            .modules
            .iter()
            .map(|m| {
                let manifest = m.manifest.as_ref();
                ModuleRow {
                    name: m.name().to_owned(),
                    file: m.file.clone(),
                    version: manifest.map_or("?".to_owned(), |x| x.version.clone()),
                    state: m.state.label(),
                    detail: m.state.detail(),
                    sha256: m.sha256.clone(),
                    short_sha256: short_hash(&m.sha256),
                    hosts: manifest
                        .map(|x| {
                            x.hosts
                                .iter()
                                .map(|h| (h.clone(), host_rule(m.host_rules.get(h))))
                                .collect()
                        })
                        .unwrap_or_default(),
                    tools: manifest
                        .map(|x| {
                            x.tools
                                .iter()
                                .map(|t| (t.name.clone(), t.flags.names()))
                                .collect()
                        })
                        .unwrap_or_default(),
                }
            })
            .collect();
        let reviews = scan
            .modules
            .iter()
            .filter(|m| m.state.is_waiting())
            .map(|m| Review {
                name: m.name().to_owned(),
                file: m.file.clone(),
                state: m.state.label(),
                sha256: m.sha256.clone(),
                lines: m
                    .diff(lock)
                    .map(|d| d.render())
                    .unwrap_or_else(|| m.state.detail())
                    .lines()
                    .map(|line| (diff_class(line), line.to_owned()))
                    .collect(),
                approvable: m.manifest.is_some(),
                flagged: m.has_flagged_findings(),
            })
            .collect();
        let mut by_name: BTreeMap<&str, Vec<PinnedVersion>> = BTreeMap::new();
        for entry in lock.entries() {
            let active = scan
                .modules
                .iter()
                .any(|m| m.file == entry.file && m.state == ModuleState::Pinned);
            by_name.entry(&entry.name).or_default().push(PinnedVersion {
                version: entry.version.clone(),
                file: entry.file.clone(),
                sha256: entry.sha256.clone(),
                short_sha256: short_hash(&entry.sha256),
                tools: entry.tools.keys().cloned().collect::<Vec<_>>().join(", "),
                hosts: if entry.hosts.is_empty() {
                    "none".to_owned()
                } else {
                    entry.hosts.join(", ")
                },
                active,
            });
        }
        let versions = by_name
            .into_iter()
            .filter(|(_, pins)| pins.len() > 1)
            .map(|(name, pins)| Versions {
                name: name.to_owned(),
                pins,
            })
            .collect();
        page(
            status,
            &ModulesPage {
                layout,
                plugins_dir: self.config.plugins_dir.display().to_string(),
                lock_file: self.config.lock_file.display().to_string(),
                modules,
                reviews,
                versions,
            },
        )
    }
}

fn host_rule(rule: Option<&registry::HostRule>) -> String {
    rule.map(|r| r.summary())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "any method and path; public addresses only".to_owned())
}

/// How a line of `plugins diff` is drawn.
fn diff_class(line: &str) -> &'static str {
    let text = line.trim_start();
    if text.starts_with("REFUSED") || text.starts_with("FLAGGED") {
        "finding"
    } else if text.starts_with("+ ") || text == "+" {
        "add"
    } else if text.starts_with("- ") || text == "-" {
        "del"
    } else if text.starts_with("~ ") {
        "change"
    } else {
        "same"
    }
}

/// A digest of the plugins folder's listing (names, sizes, times) and the
/// lock's bytes: it changes when anything the modules page shows may have.
fn fingerprint(config: &crate::config::Config) -> String {
    let mut hasher = Sha256::new();
    if let Ok(entries) = std::fs::read_dir(&config.plugins_dir) {
        let mut listing: Vec<String> = entries
            .flatten()
            .map(|e| {
                let meta = e.metadata().ok();
                format!(
                    "{:?} {} {:?}",
                    e.file_name(),
                    meta.as_ref().map_or(0, |m| m.len()),
                    meta.and_then(|m| m.modified().ok())
                )
            })
            .collect();
        listing.sort();
        for line in listing {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
        }
    }
    hasher.update(std::fs::read(&config.lock_file).unwrap_or_default());
    short_hash(&hex::encode(hasher.finalize()))
}

async fn modules(State(console): State<Arc<Console>>, owner: Owner) -> Response {
    console
        .modules_page(&owner, Said::default(), StatusCode::OK)
        .await
}

async fn modules_state(State(console): State<Arc<Console>>, _owner: Owner) -> Response {
    fingerprint(&console.config).into_response()
}

#[derive(Deserialize)]
struct ModuleForm {
    #[serde(default)]
    file: String,
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    accept_flagged: Option<String>,
}

impl ModuleForm {
    /// The file stem `registry::find` knows the module by.
    fn stem(&self) -> &str {
        self.file.strip_suffix(".wasm").unwrap_or(&self.file)
    }
}

async fn approve(
    State(console): State<Arc<Console>>,
    Posted { owner, form }: Posted<ModuleForm>,
) -> Response {
    let approval = Approval {
        name: form.stem(),
        shown_sha256: Some(&form.sha256),
        accept_flagged: form.accept_flagged.is_some(),
    };
    let result = async {
        let (mut lock, scan) = console.scan().await?;
        let entry = registry::approve(&scan, &mut lock, approval, &console.config.plugins_dir)?;
        lock.save(&console.config.lock_file)?;
        anyhow::Ok(entry)
    }
    .await;
    let said = match result {
        Ok(entry) => {
            tracing::info!(module = %entry.name, version = %entry.version, sha256 = %entry.sha256, "approved in the console");
            Said::notice(format!(
                "Pinned {} {} (sha256 {}). A running server serves it within a second.",
                entry.name,
                entry.version,
                short_hash(&entry.sha256)
            ))
        }
        Err(e) => Said::error(format!("Nothing was approved: {e:#}")),
    };
    console
        .modules_page(&owner, said, StatusCode::CONFLICT)
        .await
}

async fn reject(
    State(console): State<Arc<Console>>,
    Posted { owner, form }: Posted<ModuleForm>,
) -> Response {
    let result = async {
        let (_lock, scan) = console.scan().await?;
        let module = registry::find(&scan, form.stem(), &console.config.plugins_dir)?;
        if module.sha256 != form.sha256 {
            anyhow::bail!(
                "{} ({}) changed since the page was drawn; review it again",
                module.name(),
                module.file
            );
        }
        Ok(registry::reject(
            &scan,
            form.stem(),
            &console.config.plugins_dir,
            &console.config.rejected_dir(),
        )?)
    }
    .await;
    let said = match result {
        Ok(rejected) => {
            tracing::info!(module = %rejected.name, file = %rejected.file, "rejected in the console");
            Said::notice(format!("Rejected {rejected}."))
        }
        Err(e) => Said::error(format!("Nothing was rejected: {e:#}")),
    };
    console
        .modules_page(&owner, said, StatusCode::CONFLICT)
        .await
}

async fn use_version(
    State(console): State<Arc<Console>>,
    Posted { owner, form }: Posted<ModuleForm>,
) -> Response {
    let result = (|| {
        let mut lock = Lock::load(&console.config.lock_file)?;
        let entry = registry::use_file(&mut lock, &form.file)?;
        lock.save(&console.config.lock_file)?;
        anyhow::Ok(entry)
    })();
    let said = match result {
        Ok(entry) => Said::notice(format!(
            "Serving {}@{} ({}) from now on; a running server switches within a second.",
            entry.name, entry.version, entry.file
        )),
        Err(e) => Said::error(format!("Nothing changed: {e:#}")),
    };
    console
        .modules_page(&owner, said, StatusCode::CONFLICT)
        .await
}

// ---------------------------------------------------------------- accounts

#[derive(Template)]
#[template(path = "console/accounts.html")]
struct AccountsPage {
    layout: Layout,
    accounts: Vec<AccountRow>,
    services: Vec<String>,
    oauth_services: Vec<String>,
    /// What the add form held, the token never among it.
    form_service: String,
    form_name: String,
}

struct AccountRow {
    service: String,
    name: String,
    default: bool,
    kind: &'static str,
    vault: String,
    reference: String,
    expires: String,
    health: String,
}

impl Console {
    async fn accounts_page(
        &self,
        owner: &Owner,
        said: Said,
        failure: StatusCode,
        kept: (&str, &str),
    ) -> Response {
        let broker: &Broker = &self.broker;
        let (said, accounts) = match broker.accounts() {
            Ok(accounts) => (said, accounts),
            Err(e) => (Said::error(e), Default::default()),
        };
        let mut rows = Vec::new();
        for account in accounts.all() {
            let status = broker.status(account).await;
            rows.push(AccountRow {
                service: account.service.clone(),
                name: account.name.clone(),
                default: accounts.default_for(&account.service) == Some(account.name.as_str()),
                kind: account.kind.label(),
                vault: account.vault.clone(),
                reference: account.reference.clone(),
                expires: status.expires,
                health: status.health.label(),
            });
        }
        let mut services: BTreeSet<String> = rows.iter().map(|r| r.service.clone()).collect();
        if let Ok((_, scan)) = self.scan().await {
            for module in scan.pinned() {
                if let Some(manifest) = &module.manifest {
                    services.extend(manifest.credentials.iter().map(|c| c.service.clone()));
                }
            }
        }
        let status = status_of(&said, failure);
        page(
            status,
            &AccountsPage {
                layout: Layout::new(owner, "accounts", said),
                accounts: rows,
                services: services.into_iter().collect(),
                oauth_services: self.config.broker.oauth.keys().cloned().collect(),
                form_service: kept.0.to_owned(),
                form_name: kept.1.to_owned(),
            },
        )
    }
}

async fn accounts(State(console): State<Arc<Console>>, owner: Owner) -> Response {
    console
        .accounts_page(&owner, Said::default(), StatusCode::OK, ("", ""))
        .await
}

#[derive(Deserialize)]
struct AddAccountForm {
    #[serde(default)]
    service: String,
    #[serde(default)]
    name: String,
    /// Zeroized when the form is dropped.
    #[serde(default)]
    token: Zeroizing<String>,
    #[serde(default)]
    default: Option<String>,
}

async fn add_account(
    State(console): State<Arc<Console>>,
    Posted { owner, form }: Posted<AddAccountForm>,
) -> Response {
    let (service, name) = (form.service.trim(), form.name.trim());
    let result = async {
        let vault = console.broker.vault_for(service)?;
        let secret = if vault.stores_secrets() {
            Some(
                crate::broker::secret_from_text(&form.token)
                    .map_err(|e| anyhow::anyhow!("the token was refused: {e}"))?,
            )
        } else {
            None
        };
        let account = console
            .broker
            .add(service, name, secret, form.default.is_some())
            .await?;
        anyhow::Ok(account)
    }
    .await;
    let (said, kept) = match result {
        Ok(account) => (
            Said::notice(format!(
                "Added {service} account `{name}`; its token is in vault `{}`.",
                account.vault
            )),
            ("", ""),
        ),
        // The names are kept for another try; the token never is.
        Err(e) => (
            Said::error(format!("Nothing was added: {e:#}")),
            (service, name),
        ),
    };
    console
        .accounts_page(&owner, said, StatusCode::BAD_REQUEST, kept)
        .await
}

#[derive(Deserialize)]
struct AccountForm {
    #[serde(default)]
    service: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    default: Option<String>,
}

async fn default_account(
    State(console): State<Arc<Console>>,
    Posted { owner, form }: Posted<AccountForm>,
) -> Response {
    let said = match console.broker.set_default(&form.service, &form.name) {
        Ok(()) => Said::notice(format!(
            "`{}` is now the default {} account.",
            form.name, form.service
        )),
        Err(e) => Said::error(format!("Nothing changed: {e}")),
    };
    console
        .accounts_page(&owner, said, StatusCode::BAD_REQUEST, ("", ""))
        .await
}

async fn remove_account(
    State(console): State<Arc<Console>>,
    Posted { owner, form }: Posted<AccountForm>,
) -> Response {
    let broker = &console.broker;
    let result = async {
        let account = Broker::resolve(&broker.accounts()?, &form.service, Some(&form.name))?;
        // As `mcpist account remove` does: an OAuth account's tokens are
        // revoked first, and the account is kept if that fails.
        let revoked = if account.kind == AccountKind::OAuth {
            match broker.revoke(&account).await {
                Ok(Revocation::Revoked(n)) => format!(" {n} token(s) were revoked at the provider."),
                Ok(Revocation::NotOAuth) => String::new(),
                Err(e) => anyhow::bail!(
                    "{e}. The account is kept; try again later, or remove it with `mcpist account remove {} {} --force`.",
                    form.service,
                    form.name
                ),
            }
        } else {
            String::new()
        };
        let removed = broker.remove(&form.service, &form.name).await?;
        anyhow::Ok((removed, revoked))
    }
    .await;
    let said = match result {
        Ok((account, revoked)) => Said::notice(format!(
            "Removed {} account `{}` and its secret from vault `{}`.{revoked}",
            account.service, account.name, account.vault
        )),
        Err(e) => Said::error(format!("Nothing was removed: {e:#}")),
    };
    console
        .accounts_page(&owner, said, StatusCode::BAD_REQUEST, ("", ""))
        .await
}

#[derive(Template)]
#[template(path = "console/connect.html")]
struct ConnectPage {
    layout: Layout,
    service: String,
    name: String,
    url: String,
    minutes: u64,
}

async fn connect_account(
    State(console): State<Arc<Console>>,
    Posted { owner, form }: Posted<AccountForm>,
) -> Response {
    let (service, name) = (form.service.trim().to_owned(), form.name.trim().to_owned());
    let redirect_uri = format!("{}{PREFIX}/oauth/callback", owner.origin);
    let started = async {
        crate::broker::check_names(&service, &name)?;
        let exchanger = console.broker.exchanger();
        let app = exchanger.app(&service)?;
        let again = "connect it again from the console's accounts page".to_owned();
        anyhow::Ok(SignIn::redirecting_to(exchanger, app, redirect_uri, again).await?)
    }
    .await;
    let sign_in = match started {
        Ok(sign_in) => sign_in,
        Err(e) => {
            let said = Said::error(format!("Cannot connect {service} account `{name}`: {e:#}"));
            return console
                .accounts_page(&owner, said, StatusCode::BAD_REQUEST, ("", ""))
                .await;
        }
    };
    let url = sign_in.url().to_string();
    {
        let mut pending = console.pending();
        pending.retain(|p| p.started.elapsed() < SIGN_IN_TIMEOUT);
        pending.push(PendingSignIn {
            service: service.clone(),
            name: name.clone(),
            make_default: form.default.is_some(),
            sign_in,
            started: std::time::Instant::now(),
        });
    }
    page(
        StatusCode::OK,
        &ConnectPage {
            layout: Layout::new(&owner, "accounts", Said::default()),
            service,
            name,
            url,
            minutes: SIGN_IN_TIMEOUT.as_secs() / 60,
        },
    )
}

/// The provider sends the browser back here. The request carries no
/// session cookie when the provider is another site (`SameSite=Strict`), so
/// it is the sign-in's `state`, made for one sign-in and used once, that
/// says which sign-in it answers; the code is then exchanged with that
/// sign-in's PKCE verifier, which never left this process.
async fn oauth_callback(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let pending = {
        let mut pending = console.pending();
        let state = params.get("state").map(String::as_str).unwrap_or_default();
        let found = pending
            .iter()
            .position(|p| p.sign_in.state() == state && p.started.elapsed() < SIGN_IN_TIMEOUT);
        found.map(|i| pending.swap_remove(i))
    };
    let Some(pending) = pending else {
        tracing::warn!("refused an OAuth answer that belongs to no sign-in started in the console");
        return refusal(
            StatusCode::BAD_REQUEST,
            "This sign-in answer belongs to no sign-in waiting here (it was used already, took too long, or came from another page). Nothing was stored; connect the account again from the accounts page.",
        );
    };
    let broker = &console.broker;
    let result = async {
        let exchanger = broker.exchanger();
        let app = exchanger.app(&pending.service)?;
        let client_secret = broker.client_secret(app).await?;
        let tokens = pending
            .sign_in
            .complete(exchanger, app, client_secret.as_ref(), &params)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the provider's answer carried no code"))?;
        let previous = match Broker::resolve(&broker.accounts()?, &pending.service, Some(&pending.name)) {
            Ok(account) => broker.stored_tokens(&account).await.ok().flatten(),
            Err(_) => None,
        };
        let account = broker
            .add_connected(&pending.service, &pending.name, &tokens, pending.make_default)
            .await?;
        if let Some(previous) = previous
            && let Err(e) = broker.revoke_tokens(&pending.service, &previous).await
        {
            tracing::warn!(service = %pending.service, "the tokens a reconnect replaced could not be revoked: {e}");
        }
        anyhow::Ok(account)
    }
    .await;
    let said = match result {
        Ok(account) => {
            tracing::info!(service = %account.service, account = %account.name, "connected in the console");
            Said::notice(format!(
                "Connected {} account `{}`; its tokens are in vault `{}` and renewed by MCPist.",
                account.service, account.name, account.vault
            ))
        }
        Err(e) => Said::error(format!(
            "{} account `{}` was not connected: {e:#}",
            pending.service, pending.name
        )),
    };
    // A provider on another site brings the browser back without the
    // session cookie: then the answer only says what happened.
    match Owner::from_headers(&console, &headers) {
        Some(owner) => {
            console
                .accounts_page(&owner, said, StatusCode::BAD_REQUEST, ("", ""))
                .await
        }
        None => message(
            StatusCode::OK,
            said.error.as_deref().map_or("notice", |_| "error"),
            said.error.or(said.notice).as_deref().unwrap_or_default(),
        ),
    }
}

impl Console {
    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<PendingSignIn>> {
        self.sign_ins.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// ---------------------------------------------------------------- clients

#[derive(Template)]
#[template(path = "console/clients.html")]
struct ClientsPage {
    layout: Layout,
    clients: Vec<ClientRow>,
    stdio_mask: String,
    /// A key just made: the client's name and the key, shown this once.
    new_key: Option<(String, Zeroizing<String>)>,
}

struct ClientRow {
    name: String,
    created: String,
    mask: String,
}

impl Console {
    async fn clients_page(
        &self,
        owner: &Owner,
        said: Said,
        failure: StatusCode,
        new_key: Option<(String, Zeroizing<String>)>,
    ) -> Response {
        let (said, listed) = match self.clients.list() {
            Ok(list) => (said, list),
            Err(e) => (Said::error(e), Vec::new()),
        };
        let scan = self.scan().await.map(|(_, scan)| scan).unwrap_or_default();
        let clients = listed
            .into_iter()
            .map(|c| ClientRow {
                mask: self.mask_summary(&scan, &c.name),
                name: c.name,
                created: c.created,
            })
            .collect();
        let status = status_of(&said, failure);
        page(
            status,
            &ClientsPage {
                layout: Layout::new(owner, "clients", said),
                stdio_mask: self.mask_summary(&scan, "stdio"),
                clients,
                new_key,
            },
        )
    }

    /// What `client` sees of the modules served, in words.
    fn mask_summary(&self, scan: &Scan, client: &str) -> String {
        let mask = self.config.masks.of(client);
        let (mut shown, mut total) = (Vec::new(), 0);
        for module in scan.pinned() {
            let Some(manifest) = &module.manifest else {
                continue;
            };
            for tool in &manifest.tools {
                total += 1;
                if mask.shows_module(&manifest.name) && mask.shows_tool(&manifest.name, tool) {
                    shown.push(format!("{}.{}", manifest.name, tool.name));
                }
            }
        }
        match shown.len() {
            n if n == total => format!("sees every tool served ({total})"),
            0 => format!("sees none of the {total} tools served"),
            n => format!("sees {n} of {total} tools: {}", shown.join(", ")),
        }
    }
}

async fn clients(State(console): State<Arc<Console>>, owner: Owner) -> Response {
    console
        .clients_page(&owner, Said::default(), StatusCode::OK, None)
        .await
}

#[derive(Deserialize)]
struct ClientForm {
    #[serde(default)]
    name: String,
}

async fn add_client(
    State(console): State<Arc<Console>>,
    Posted { owner, form }: Posted<ClientForm>,
) -> Response {
    let name = form.name.trim();
    match console.clients.add(name) {
        Ok(key) => {
            tracing::info!(client = name, "client key created in the console");
            let said = Said::notice(format!("Registered client `{name}`."));
            console
                .clients_page(&owner, said, StatusCode::OK, Some((name.to_owned(), key)))
                .await
        }
        Err(e) => {
            let said = Said::error(format!("No key was created: {e}"));
            console
                .clients_page(&owner, said, StatusCode::BAD_REQUEST, None)
                .await
        }
    }
}

async fn remove_client(
    State(console): State<Arc<Console>>,
    Posted { owner, form }: Posted<ClientForm>,
) -> Response {
    let said = match console.clients.remove(&form.name) {
        Ok(()) => {
            tracing::info!(client = %form.name, "client removed in the console");
            Said::notice(format!(
                "Removed client `{}`: its key is refused from the next request on.",
                form.name
            ))
        }
        Err(e) => Said::error(format!("Nothing was removed: {e}")),
    };
    console
        .clients_page(&owner, said, StatusCode::BAD_REQUEST, None)
        .await
}

// ---------------------------------------------------------------- audit

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    layout: Layout,
    verify_class: &'static str,
    verify_summary: String,
    problems: Vec<String>,
    last_hash: Option<String>,
    filter_module: String,
    filter_client: String,
    filter_outcome: String,
    outcomes: [&'static str; OUTCOMES.len()],
    matching: usize,
    calls: Vec<CallRow>,
    newer: Option<String>,
    older: Option<String>,
}

struct CallRow {
    seq: u64,
    time: String,
    client: String,
    module: String,
    tool: String,
    account: String,
    outcome: &'static str,
    reason: Option<String>,
    millis: String,
    outbound: String,
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    #[serde(default)]
    module: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    page: usize,
}

const OUTCOMES: [Outcome; 7] = [
    Outcome::Ok,
    Outcome::ToolError,
    Outcome::Refused,
    Outcome::Failed,
    Outcome::Cancelled,
    Outcome::Declined,
    Outcome::ConsentAsked,
];

async fn audit(
    State(console): State<Arc<Console>>,
    owner: Owner,
    Query(query): Query<AuditQuery>,
) -> Response {
    let path = &console.config.audit.file;
    let given = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
    let filter = Filter {
        module: given(&query.module),
        client: given(&query.client),
        outcome: OUTCOMES.into_iter().find(|o| o.label() == query.outcome),
    };
    let mut said = Said::default();
    let (verify_class, verify_summary, problems, last_hash) = if !path.exists() {
        (
            "notice",
            "No call has been recorded yet.".to_owned(),
            Vec::new(),
            None,
        )
    } else {
        match crate::audit::verify(path) {
            Ok(report) if report.is_intact() => (
                "notice",
                format!("ok: {} records, chain intact.", report.lines),
                Vec::new(),
                report.last_hash,
            ),
            Ok(report) => (
                "error",
                format!(
                    "{} problem(s): the log was altered. Keep this copy as it is for investigation.",
                    report.problems.len()
                ),
                report.problems.iter().map(|p| p.to_string()).collect(),
                report.last_hash,
            ),
            Err(e) => {
                said = Said::error(format!("Cannot read the audit log {}: {e}", path.display()));
                (
                    "error",
                    "The log could not be checked.".to_owned(),
                    Vec::new(),
                    None,
                )
            }
        }
    };
    let found =
        crate::audit::read::page(path, &filter, query.page, CALLS_PER_PAGE).unwrap_or_default();
    let calls = found
        .lines
        .into_iter()
        .map(|line| {
            let r = line.record;
            CallRow {
                seq: line.seq,
                time: r.time,
                client: r.client,
                module: r.module,
                tool: r.tool,
                account: r.account.unwrap_or_default(),
                outcome: r.outcome.label(),
                reason: r.reason,
                millis: format!("{:.1}", r.duration_us as f64 / 1000.0),
                outbound: r
                    .outbound
                    .iter()
                    .map(|o| {
                        format!(
                            "{} {} {}",
                            o.method,
                            o.origin,
                            o.status.map_or("-".to_owned(), |s| s.to_string())
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            }
        })
        .collect();
    let link = |page: usize| {
        let mut url = url::Url::parse("http://console/audit").expect("a valid URL");
        url.query_pairs_mut()
            .append_pair("module", query.module.trim())
            .append_pair("client", query.client.trim())
            .append_pair("outcome", &query.outcome)
            .append_pair("page", &page.to_string());
        format!("{PREFIX}/audit?{}", url.query().unwrap_or_default())
    };
    let pages = found.matching.div_ceil(CALLS_PER_PAGE);
    page(
        StatusCode::OK,
        &AuditPage {
            layout: Layout::new(&owner, "audit", said),
            verify_class,
            verify_summary,
            problems,
            last_hash,
            filter_module: query.module.trim().to_owned(),
            filter_client: query.client.trim().to_owned(),
            filter_outcome: filter.outcome.map_or("", |o| o.label()).to_owned(),
            outcomes: OUTCOMES.map(Outcome::label),
            matching: found.matching,
            calls,
            newer: (query.page > 0).then(|| link(query.page - 1)),
            older: (query.page + 1 < pages).then(|| link(query.page + 1)),
        },
    )
}
