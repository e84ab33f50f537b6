//! The host syntax modules declare and the owner approves:
//! `scheme://host[:port]` or `scheme://*.suffix[:port]`, scheme `http` or
//! `https`, the port defaulting to the scheme's. No path, query or userinfo.

use url::Url;

#[derive(Debug, Clone, PartialEq, Eq)]
/// A declared host, parsed: what URLs it matches.
pub struct HostPattern {
    scheme: String,
    host: HostMatch,
    port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    /// Exactly this host (lowercase domain or IP literal as `Url` writes it).
    Exact(String),
    /// Any host under this domain (`*.example.com`), not the domain itself.
    Subdomain(String),
}

impl HostPattern {
    /// Parse a declared host; the error says what to write instead.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let bad = |why: &str| {
            Err(format!(
                "host {text:?} is not valid ({why}); write `https://host`, `https://host:port` or `https://*.domain`"
            ))
        };
        let Some((scheme, rest)) = text.split_once("://") else {
            return bad("no scheme");
        };
        if scheme != "http" && scheme != "https" {
            return bad("the scheme must be http or https");
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return bad("only scheme, host and port are allowed");
        }
        let (wildcard, authority) = match rest.strip_prefix("*.") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        if authority.contains('*') {
            return bad("`*` is allowed only as the first label, as in `*.example.com`");
        }
        let Ok(url) = Url::parse(&format!("{scheme}://{authority}")) else {
            return bad("the host cannot be parsed");
        };
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return bad("no host");
        };
        if wildcard
            && (url
                .host()
                .is_some_and(|h| !matches!(h, url::Host::Domain(_)))
                || !host.contains('.'))
        {
            return bad("a wildcard needs a domain with at least two labels after `*.`");
        }
        Ok(HostPattern {
            scheme: scheme.to_owned(),
            host: if wildcard {
                HostMatch::Subdomain(host.to_owned())
            } else {
                HostMatch::Exact(host.to_owned())
            },
            port,
        })
    }

    /// Whether `url` is on this host (scheme, host and port).
    pub fn matches(&self, url: &Url) -> bool {
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        url.scheme() == self.scheme
            && port == self.port
            && match &self.host {
                HostMatch::Exact(exact) => host == exact,
                HostMatch::Subdomain(domain) => host
                    .strip_suffix(domain.as_str())
                    .is_some_and(|label| label.len() > 1 && label.ends_with('.')),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, url: &str) -> bool {
        HostPattern::parse(pattern)
            .unwrap()
            .matches(&Url::parse(url).unwrap())
    }

    #[test]
    fn matching_honours_scheme_port_and_wildcards() {
        assert!(m("https://api.github.com", "https://api.github.com/user"));
        assert!(m(
            "https://api.github.com",
            "https://API.github.com:443/user"
        ));
        assert!(!m("https://api.github.com", "http://api.github.com/user"));
        assert!(!m("https://api.github.com", "https://api.github.com:8443/"));
        assert!(!m(
            "https://api.github.com",
            "https://api.github.com.evil.test/"
        ));
        assert!(m("http://127.0.0.1:8080", "http://127.0.0.1:8080/x"));
        assert!(m("https://*.notion.so", "https://files.notion.so/a"));
        assert!(m("https://*.notion.so", "https://a.b.notion.so/a"));
        assert!(!m("https://*.notion.so", "https://notion.so/a"));
        assert!(!m("https://*.notion.so", "https://evilnotion.so/a"));
    }

    #[test]
    fn bad_patterns_are_explained() {
        for bad in [
            "api.github.com",
            "ftp://x.com",
            "https://x.com/path",
            "https://user@x.com",
            "https://*.com",
            "https://a.*.com",
            "https://*.1.2.3.4",
        ] {
            let err = HostPattern::parse(bad).unwrap_err();
            assert!(err.contains("https://host"), "{bad}: {err}");
        }
    }
}
