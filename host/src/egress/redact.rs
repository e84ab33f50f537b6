//! Replacing a call's secrets wherever they could flow back towards the
//! module or a log: response headers and bodies, and error text.

use zeroize::Zeroizing;

pub const MARKER: &str = "[REDACTED]";

/// The byte strings to hide: each secret, and each form it was sent in
/// (a whole header value, a base64 basic-auth value, a URL-encoded value).
#[derive(Default)]
pub struct Redactor {
    needles: Vec<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} needles)", self.needles.len())
    }
}

impl Redactor {
    pub fn add(&mut self, needle: &[u8]) {
        // Very short values would redact innocent text and protect nothing.
        if needle.len() >= 4 && !self.needles.iter().any(|n| n.as_slice() == needle) {
            self.needles.push(Zeroizing::new(needle.to_vec()));
            // Longest first, so a value containing another is hidden whole.
            self.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        }
    }

    pub fn bytes(&self, data: Vec<u8>) -> Vec<u8> {
        let mut data = data;
        for needle in &self.needles {
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
        if self.needles.is_empty() {
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
        let mut r = Redactor::default();
        r.add(b"tok-123");
        r.add(b"Bearer tok-123");
        r.add(b"ab");
        let out = r.text("auth=Bearer tok-123; again tok-123tok-123; ab stays");
        assert_eq!(out, "auth=[REDACTED]; again [REDACTED][REDACTED]; ab stays");
    }
}
