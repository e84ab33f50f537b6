//! Who may use the console: one-time login links, and the sessions they
//! open.
//!
//! A login link carries 32 random bytes. Only their sha256 is kept, as a
//! file in `$MCPIST_HOME/console/links/` holding the link's expiry, so that
//! `mcpist console link` (another process) can issue a link for a console
//! that is already running. Redeeming a link removes its file: whichever
//! request removes it first gets the session, any other finds nothing, so a
//! link opens one session at most.
//!
//! Sessions live in the server's memory only (a restart logs the owner
//! out). The cookie carries the session's random id; the server keeps its
//! sha256, the session's CSRF token and when it was last used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::exchanger::unix_now;

/// How long a login link may wait to be opened.
pub const LINK_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// The login links issued for the consoles of one data folder.
#[derive(Debug, Clone)]
pub struct LoginLinks {
    dir: PathBuf,
}

impl LoginLinks {
    /// The links kept under `home`.
    pub fn new(home: &Path) -> LoginLinks {
        LoginLinks {
            dir: home.join("console").join("links"),
        }
    }

    /// A fresh link token, valid once within [`LINK_LIFETIME`].
    pub fn issue(&self) -> std::io::Result<Zeroizing<String>> {
        crate::atomic_file::create_private_dir(&self.dir)?;
        self.forget_expired();
        let token = random_token();
        let expires = unix_now() + LINK_LIFETIME.as_secs() as i64;
        crate::atomic_file::write_atomic(&self.path_of(&token), expires.to_string().as_bytes())?;
        Ok(token)
    }

    /// Whether `token` is a link issued here, unused and unexpired; it is
    /// used up either way.
    pub fn redeem(&self, token: &str) -> bool {
        if token.is_empty() || token.len() > 128 {
            return false;
        }
        let path = self.path_of(token);
        let Ok(expires) = std::fs::read_to_string(&path) else {
            return false;
        };
        // Removing the file is what makes the link used: of two requests
        // racing with one link, only one removes it.
        std::fs::remove_file(&path).is_ok()
            && expires.trim().parse::<i64>().is_ok_and(|e| e > unix_now())
    }

    fn path_of(&self, token: &str) -> PathBuf {
        self.dir.join(hex::encode(Sha256::digest(token.as_bytes())))
    }

    fn forget_expired(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = unix_now();
        for entry in entries.flatten() {
            let expired = std::fs::read_to_string(entry.path())
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
                .is_none_or(|e| e <= now);
            if expired {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Where a running console can be reached, for `mcpist console link`.
pub fn url_file(home: &Path) -> PathBuf {
    home.join("console").join("url")
}

/// One owner's signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// sha256 of the cookie's value.
    pub id: String,
    /// Every form that changes something carries it.
    pub csrf: String,
}

struct Entry {
    csrf: String,
    last_used: Instant,
}

/// The signed-in sessions, by the sha256 of their cookie.
pub struct Sessions {
    idle_timeout: Duration,
    open: Mutex<HashMap<String, Entry>>,
}

impl Sessions {
    /// Sessions that end after `idle_timeout` without a request.
    pub fn new(idle_timeout: Duration) -> Sessions {
        Sessions {
            idle_timeout,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Open a session; the returned cookie value is the only copy of its id.
    pub fn open(&self) -> Zeroizing<String> {
        let cookie = random_token();
        let mut open = self.lock();
        open.retain(|_, e| e.last_used.elapsed() < self.idle_timeout);
        open.insert(
            digest(&cookie),
            Entry {
                csrf: random_token().to_string(),
                last_used: Instant::now(),
            },
        );
        cookie
    }

    /// The session `cookie` opened, if it is open and was used within the
    /// idle timeout; using it keeps it open.
    pub fn find(&self, cookie: &str) -> Option<Session> {
        let id = digest(cookie);
        let mut open = self.lock();
        let entry = open.get_mut(&id)?;
        if entry.last_used.elapsed() >= self.idle_timeout {
            open.remove(&id);
            return None;
        }
        entry.last_used = Instant::now();
        Some(Session {
            csrf: entry.csrf.clone(),
            id,
        })
    }

    /// End a session.
    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether `given` is `expected`, in time that does not depend on where
/// they first differ.
pub fn same_secret(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

fn digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// 32 random bytes, base64url.
fn random_token() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut()).expect("the OS random source works");
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_opens_one_session_and_only_before_it_expires() {
        let home = tempfile::tempdir().unwrap();
        let links = LoginLinks::new(home.path());
        let token = links.issue().unwrap();
        assert!(!links.redeem("forged"));
        assert!(links.redeem(&token));
        assert!(!links.redeem(&token), "a link is used once");

        let stale = links.issue().unwrap();
        std::fs::write(links.path_of(&stale), (unix_now() - 1).to_string()).unwrap();
        assert!(!links.redeem(&stale), "an expired link opens nothing");
        assert!(!links.path_of(&stale).exists(), "and is used up");
    }

    #[test]
    fn a_session_ends_when_idle_or_closed() {
        let sessions = Sessions::new(Duration::from_millis(50));
        let cookie = sessions.open();
        let session = sessions.find(&cookie).expect("open");
        assert_ne!(session.id, *cookie, "the server keeps only a digest");
        assert!(sessions.find("other").is_none());
        sessions.close(&session.id);
        assert!(sessions.find(&cookie).is_none());

        let idle = sessions.open();
        std::thread::sleep(Duration::from_millis(60));
        assert!(sessions.find(&idle).is_none(), "idle too long");
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("ab", "abc"));
    }
}
