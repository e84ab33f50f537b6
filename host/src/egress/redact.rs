//! Replacing a call's secrets wherever they could flow back towards the
//! module or a log: response headers and bodies, and error text.

use std::sync::{PoisonError, RwLock};

use zeroize::Zeroizing;

pub const MARKER: &str = "[REDACTED]";

/// The byte strings to hide: each secret, and each form it was sent in
/// (a whole header value, a base64 basic-auth value, a URL-encoded value).
///
/// Shared by a call's requests and its log lines, which may run at once (a
/// module's `wasi:http` requests are tasks of their own): a secret is
/// registered before the request that carries it leaves, and every reader
/// sees it from then on.
#[derive(Default)]
pub struct Redactor {
    needles: RwLock<Vec<Zeroizing<Vec<u8>>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} needles)", self.needles().len())
    }
}

impl Redactor {
    /// The needles, longest first. A writer never leaves them half-changed,
    /// so a poisoned lock still holds a usable list.
    fn needles(&self) -> std::sync::RwLockReadGuard<'_, Vec<Zeroizing<Vec<u8>>>> {
        self.needles.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn add(&self, needle: &[u8]) {
        let mut needles = self.needles.write().unwrap_or_else(PoisonError::into_inner);
        // Very short values would redact innocent text and protect nothing.
        if needle.len() >= 4 && !needles.iter().any(|n| n.as_slice() == needle) {
            needles.push(Zeroizing::new(needle.to_vec()));
            // Longest first, so a value containing another is hidden whole.
            needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        }
    }

    /// Register `secret` in every form an upstream could plausibly echo it
    /// in: as sent, URL-encoded (form and path style), and JSON-escaped
    /// (with and without `\/`, or `\u002f`, for a slash). A module that
    /// could ask for another encoding of the echo (compressed, in byte
    /// ranges) is stopped before the request leaves; see `egress`.
    pub fn add_secret(&self, secret: &str) {
        self.add(secret.as_bytes());
        let form: Zeroizing<String> =
            Zeroizing::new(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect());
        self.add(form.as_bytes());
        let percent: Zeroizing<String> = Zeroizing::new(
            percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
        self.add(percent.as_bytes());
        let json = Zeroizing::new(serde_json::to_string(secret).unwrap_or_default());
        let json = json
            .get(1..json.len().saturating_sub(1))
            .unwrap_or_default();
        self.add(json.as_bytes());
        if json.contains('/') {
            self.add(Zeroizing::new(json.replace('/', "\\/")).as_bytes());
            self.add(Zeroizing::new(json.replace('/', "\\u002f")).as_bytes());
            self.add(Zeroizing::new(json.replace('/', "\\u002F")).as_bytes());
        }
    }

    /// Whether `data` holds any registered form of a secret.
    pub fn contains(&self, data: &[u8]) -> bool {
        self.needles()
            .iter()
            .any(|n| memchr::memmem::find(data, n).is_some())
    }

    pub fn bytes(&self, data: Vec<u8>) -> Vec<u8> {
        let mut data = data;
        for needle in self.needles().iter() {
            if memchr::memmem::find(&data, needle).is_none() {
                continue;
            }
            let finder = memchr::memmem::Finder::new(needle.as_slice());
            let mut out = Vec::with_capacity(data.len());
            let mut last = 0;
            for at in finder.find_iter(&data) {
                if at < last {
                    continue;
                }
                out.extend_from_slice(&data[last..at]);
                out.extend_from_slice(MARKER.as_bytes());
                last = at + needle.len();
            }
            out.extend_from_slice(&data[last..]);
            data = out;
        }
        data
    }

    pub fn text(&self, text: &str) -> String {
        if self.needles().is_empty() {
            return text.to_owned();
        }
        String::from_utf8(self.bytes(text.as_bytes().to_vec()))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_is_replaced() {
        let r = Redactor::default();
        r.add(b"tok-123");
        r.add(b"Bearer tok-123");
        r.add(b"ab");
        let out = r.text("auth=Bearer tok-123; again tok-123tok-123; ab stays");
        assert_eq!(out, "auth=[REDACTED]; again [REDACTED][REDACTED]; ab stays");
    }

    #[test]
    fn escaped_echoes_of_a_secret_are_replaced() {
        let r = Redactor::default();
        r.add_secret("ab/cd+ef\"gh");
        for echo in [
            r#"{"auth":"ab\/cd+ef\"gh"}"#,
            r#"{"auth":"ab/cd+ef\"gh"}"#,
            r#"{"auth":"ab\u002fcd+ef\"gh"}"#,
            "q=ab%2Fcd%2Bef%22gh",
            "q=ab%2Fcd%2Bef%22gh",
            "raw ab/cd+ef\"gh",
        ] {
            let out = r.text(echo);
            assert!(out.contains(MARKER), "{echo} -> {out}");
            assert!(
                !out.contains("cd+ef") && !out.contains("cd%2Bef"),
                "{echo} -> {out}"
            );
            assert!(r.contains(echo.as_bytes()), "{echo}");
        }
        assert!(!r.contains(b"nothing here"));
    }
}
