//! Upstream overrides (`[upstreams]` in `mcpist.toml`): an approved origin's
//! requests go to another base URL (GitHub Enterprise Server, or a local
//! test server). Policy and credentials are decided on the logical URL the
//! module wrote; only the connection goes elsewhere, and the base URL is
//! mapped back in `Location` and `Link` headers so that the module only ever
//! sees the origin it knows.

use std::collections::BTreeMap;

use url::Url;

use super::EgressSetupError;

struct Upstream {
    /// The origin modules address, e.g. `https://api.github.com`.
    logical: Url,
    /// Where its requests go instead, e.g. `http://127.0.0.1:8080/prefix`.
    base: Url,
}

/// Every configured override.
#[derive(Default)]
pub(crate) struct Upstreams(Vec<Upstream>);

impl Upstreams {
    /// `upstreams` maps a host (`api.github.com`, meaning https) or an
    /// origin (`http://api.test:8080`) to a base URL.
    pub fn parse(upstreams: &BTreeMap<String, String>) -> Result<Upstreams, EgressSetupError> {
        upstreams
            .iter()
            .map(|(key, base)| parse_upstream(key, base))
            .collect::<Result<Vec<_>, _>>()
            .map(Upstreams)
    }

    /// Where a request to `logical` is really sent.
    pub fn to_physical(&self, logical: &Url) -> Url {
        let Some(up) = self
            .0
            .iter()
            .find(|u| u.logical.origin() == logical.origin())
        else {
            return logical.clone();
        };
        let mut url = up.base.clone();
        let base_path = up.base.path().trim_end_matches('/');
        url.set_path(&format!("{base_path}{}", logical.path()));
        url.set_query(logical.query());
        url
    }

    /// The URL a module knows for `physical` (a redirect's target).
    pub fn to_logical(&self, physical: &Url) -> Url {
        for up in &self.0 {
            let base_path = up.base.path().trim_end_matches('/');
            if up.base.origin() == physical.origin()
                && let Some(rest) = physical.path().strip_prefix(base_path)
                && (rest.is_empty() || rest.starts_with('/'))
            {
                let mut url = up.logical.clone();
                url.set_path(if rest.is_empty() { "/" } else { rest });
                url.set_query(physical.query());
                return url;
            }
        }
        physical.clone()
    }

    /// Map upstream base URLs in a header value back to the origins the
    /// module knows (pagination `Link`s, `Location`).
    pub fn to_logical_text(&self, value: &str) -> String {
        let mut value = value.to_owned();
        for up in &self.0 {
            let base = up.base.as_str().trim_end_matches('/');
            let logical = up.logical.as_str().trim_end_matches('/');
            if value.contains(base) {
                value = value.replace(base, logical);
            }
        }
        value
    }
}

fn parse_upstream(key: &str, base: &str) -> Result<Upstream, EgressSetupError> {
    let bad = |reason: String| EgressSetupError::Upstream {
        key: key.to_owned(),
        reason,
    };
    let origin = if key.contains("://") {
        key.to_owned()
    } else {
        format!("https://{key}")
    };
    let logical = Url::parse(&origin)
        .ok()
        .filter(|u| u.path() == "/" && u.query().is_none() && u.username().is_empty())
        .ok_or_else(|| {
            bad(
                "the key must be a host (api.github.com) or an origin (https://api.github.com)"
                    .to_owned(),
            )
        })?;
    let base = Url::parse(base).map_err(|e| bad(format!("{base:?} is not a URL: {e}")))?;
    if !matches!(base.scheme(), "http" | "https")
        || base.query().is_some()
        || !base.username().is_empty()
    {
        return Err(bad(format!(
            "{base:?} must be an http(s) base URL without query or user"
        )));
    }
    Ok(Upstream { logical, base })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_overrides_map_requests_and_links_both_ways() {
        let upstreams = Upstreams::parse(
            &[
                (
                    "api.github.com".to_owned(),
                    "http://127.0.0.1:9000/api.github.com/abc".to_owned(),
                ),
                (
                    "http://svc.test:8080".to_owned(),
                    "http://127.0.0.1:9001".to_owned(),
                ),
            ]
            .into_iter()
            .collect(),
        )
        .unwrap();
        let logical = Url::parse("https://api.github.com/repos/o/r?page=2").unwrap();
        let physical = upstreams.to_physical(&logical);
        assert_eq!(
            physical.as_str(),
            "http://127.0.0.1:9000/api.github.com/abc/repos/o/r?page=2"
        );
        assert_eq!(upstreams.to_logical(&physical), logical);
        assert_eq!(
            upstreams
                .to_physical(&Url::parse("http://svc.test:8080/x").unwrap())
                .as_str(),
            "http://127.0.0.1:9001/x"
        );
        // Another origin is left alone.
        let other = Url::parse("https://example.com/").unwrap();
        assert_eq!(upstreams.to_physical(&other), other);
        let link = r#"<http://127.0.0.1:9000/api.github.com/abc/repositories/1/issues?page=3>; rel="next""#;
        assert_eq!(
            upstreams.to_logical_text(link),
            r#"<https://api.github.com/repositories/1/issues?page=3>; rel="next""#
        );
        assert!(
            Upstreams::parse(
                &[("api.github.com".to_owned(), "not a url".to_owned())]
                    .into_iter()
                    .collect()
            )
            .is_err()
        );
    }
}
