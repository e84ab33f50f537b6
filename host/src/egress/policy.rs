//! What one module may send where: its approved hosts with the owner's rules
//! (methods, path prefixes, private addresses) and its credential bindings.
//! Built from the pin in `registry.lock`, never from what the module says at
//! run time.

use std::collections::BTreeMap;

use url::Url;

use crate::manifest::{CredentialBinding, HostPattern, Injection};
use crate::registry::HostRule;

/// One approved host with the owner's rule for it.
#[derive(Debug)]
pub struct Grant {
    /// The host as declared and approved, for messages.
    pub declared: String,
    pattern: HostPattern,
    /// The owner's rule for it.
    pub rule: HostRule,
}

/// Headers that ask a server to treat a request as another method: under a
/// method rule they would turn an allowed `POST` into a `DELETE`.
const METHOD_OVERRIDE_HEADERS: &[&str] = &[
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

impl Grant {
    /// The module's headers under this grant's rule: no method override
    /// where a method rule applies.
    pub fn check_headers(
        &self,
        module: &str,
        headers: &[(reqwest::header::HeaderName, reqwest::header::HeaderValue)],
    ) -> Result<(), String> {
        if self.rule.methods.is_empty() {
            return Ok(());
        }
        match headers
            .iter()
            .find(|(name, _)| METHOD_OVERRIDE_HEADERS.contains(&name.as_str()))
        {
            Some((name, _)) => Err(format!(
                "module `{module}` may not set the {name} header for {}: a method rule applies there (allowed: {})",
                self.declared,
                self.rule.methods.join(", ")
            )),
            None => Ok(()),
        }
    }
}

/// Whether a path holds an encoded separator or dot (`%2f`, `%5c`, `%2e`,
/// any case) or a backslash: a server that decodes before it normalises
/// would resolve `/public/..%2fsecret` outside `/public/`.
fn has_encoded_structure(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    path.contains('\\') || ["%2f", "%5c", "%2e"].iter().any(|e| lower.contains(e))
}

/// One credential binding: whose secret goes to which hosts, and how.
#[derive(Debug)]
pub struct Binding {
    /// The service whose account's secret is attached.
    pub service: String,
    /// How it is attached.
    pub inject: Injection,
    hosts: Vec<HostPattern>,
}

/// Where one module may send HTTP, and with which credentials.
#[derive(Debug)]
pub struct ModulePolicy {
    /// The module's name, for messages.
    pub module: String,
    grants: Vec<Grant>,
    bindings: Vec<Binding>,
}

impl ModulePolicy {
    /// `hosts` and `credentials` as pinned; declarations were validated when
    /// the module was approved, so a pattern that fails to parse here is
    /// dropped (it grants nothing) with a warning.
    pub fn new(
        module: &str,
        hosts: &[String],
        credentials: &[CredentialBinding],
        rules: &BTreeMap<String, HostRule>,
    ) -> ModulePolicy {
        let parse = |host: &String| match HostPattern::parse(host) {
            Ok(pattern) => Some(pattern),
            Err(reason) => {
                tracing::warn!(module, "ignoring approved host: {reason}");
                None
            }
        };
        let grants = hosts
            .iter()
            .filter_map(|declared| {
                Some(Grant {
                    pattern: parse(declared)?,
                    declared: declared.clone(),
                    rule: rules.get(declared).cloned().unwrap_or_default(),
                })
            })
            .collect();
        let bindings = credentials
            .iter()
            .map(|b| Binding {
                service: b.service.clone(),
                inject: b.inject.clone(),
                hosts: b.hosts.iter().filter_map(parse).collect(),
            })
            .collect();
        ModulePolicy {
            module: module.to_owned(),
            grants,
            bindings,
        }
    }

    /// The services whose accounts a call of this module needs.
    pub fn services(&self) -> Vec<&str> {
        let mut services: Vec<&str> = self.bindings.iter().map(|b| b.service.as_str()).collect();
        services.sort_unstable();
        services.dedup();
        services
    }

    /// The grant that lets `method` reach `url`, or why not.
    pub fn check(&self, method: &str, url: &Url) -> Result<&Grant, String> {
        let origin = url.origin().ascii_serialization();
        let Some(grant) = self.grants.iter().find(|g| g.pattern.matches(url)) else {
            let approved = if self.grants.is_empty() {
                "it has no approved hosts, so no network access".to_owned()
            } else {
                format!(
                    "its approved hosts are {}",
                    self.grants
                        .iter()
                        .map(|g| g.declared.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            return Err(format!(
                "{origin} is not an approved host for module `{}` ({approved}); a module reaches only the hosts it declares, approved with `mcpist plugins approve {}`",
                self.module, self.module
            ));
        };
        let rule = &grant.rule;
        if !rule.methods.is_empty() && !rule.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
        {
            return Err(format!(
                "{method} is not allowed to {} for module `{}` (allowed: {}); change it with `mcpist plugins host {} {} --methods ...`",
                grant.declared,
                self.module,
                rule.methods.join(", "),
                self.module,
                grant.declared
            ));
        }
        if !rule.paths.is_empty() && has_encoded_structure(url.path()) {
            return Err(format!(
                "path {} of {} holds an encoded slash, backslash or dot, which could leave the prefixes allowed for module `{}` ({}) on a server that decodes it",
                url.path(),
                grant.declared,
                self.module,
                rule.paths.join(", ")
            ));
        }
        if !rule.paths.is_empty()
            && !rule
                .paths
                .iter()
                .any(|p| url.path().starts_with(p.as_str()))
        {
            return Err(format!(
                "path {} of {} is outside the prefixes allowed for module `{}` ({}); change them with `mcpist plugins host {} {} --paths ...`",
                url.path(),
                grant.declared,
                self.module,
                rule.paths.join(", "),
                self.module,
                grant.declared
            ));
        }
        Ok(grant)
    }

    /// The credential binding for `url`, if any (the first that matches).
    pub fn binding_for(&self, url: &Url) -> Option<&Binding> {
        self.bindings
            .iter()
            .find(|b| b.hosts.iter().any(|h| h.matches(url)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(rule: HostRule) -> ModulePolicy {
        let rules = [("https://api.github.com".to_owned(), rule)]
            .into_iter()
            .collect();
        ModulePolicy::new(
            "github",
            &[
                "https://api.github.com".to_owned(),
                "https://*.githubusercontent.com".to_owned(),
            ],
            &[CredentialBinding {
                service: "github".into(),
                inject: Injection::Bearer,
                hosts: vec!["https://api.github.com".into()],
            }],
            &rules,
        )
    }

    fn url(u: &str) -> Url {
        Url::parse(u).unwrap()
    }

    #[test]
    fn methods_and_path_prefixes_are_enforced() {
        let p = policy(HostRule {
            methods: vec!["GET".into()],
            paths: vec!["/repos/".into()],
            allow_private: false,
        });
        assert!(
            p.check("GET", &url("https://api.github.com/repos/a/b"))
                .is_ok()
        );
        let err = p
            .check("POST", &url("https://api.github.com/repos/a/b/issues"))
            .unwrap_err();
        assert!(err.contains("POST is not allowed"), "{err}");
        let err = p
            .check("GET", &url("https://api.github.com/user"))
            .unwrap_err();
        assert!(err.contains("outside the prefixes"), "{err}");
        // Dot segments are resolved before the check.
        let err = p
            .check("GET", &url("https://api.github.com/repos/../user"))
            .unwrap_err();
        assert!(err.contains("path /user"), "{err}");
        // Encoded separators and dots cannot leave the prefix.
        for path in [
            "/repos/..%2fuser",
            "/repos/%2e%2e%2Fuser",
            "/repos/%2E%2E/user",
            "/repos/..%5Cuser",
        ] {
            let err = p
                .check("GET", &url(&format!("https://api.github.com{path}")))
                .unwrap_err();
            // (The URL parser already resolves `%2e%2e` as `..`.)
            assert!(
                err.contains("encoded slash") || err.contains("outside the prefixes"),
                "{path}: {err}"
            );
        }
        // No method override where a method rule applies.
        let grant = p
            .check("GET", &url("https://api.github.com/repos/a/b"))
            .unwrap();
        let header = |name: &'static str| {
            vec![(
                reqwest::header::HeaderName::from_static(name),
                reqwest::header::HeaderValue::from_static("DELETE"),
            )]
        };
        for name in [
            "x-http-method-override",
            "x-http-method",
            "x-method-override",
        ] {
            let err = grant.check_headers("github", &header(name)).unwrap_err();
            assert!(err.contains(name), "{err}");
        }
        assert!(grant.check_headers("github", &header("x-other")).is_ok());
        // Rules apply per host.
        assert!(
            p.check("POST", &url("https://raw.githubusercontent.com/x"))
                .is_ok()
        );
    }

    #[test]
    fn unapproved_hosts_are_refused_with_the_way_to_approve() {
        let p = policy(HostRule::default());
        let err = p
            .check("GET", &url("https://evil.example/steal"))
            .unwrap_err();
        assert!(
            err.starts_with("https://evil.example is not an approved host for module `github`"),
            "{err}"
        );
        assert!(err.contains("mcpist plugins approve github"), "{err}");
        assert!(p.binding_for(&url("https://api.github.com/user")).is_some());
        assert!(
            p.binding_for(&url("https://raw.githubusercontent.com/x"))
                .is_none()
        );
        assert_eq!(p.services(), ["github"]);
    }
}
