//! Consent: whether a call runs without the person at the client agreeing
//! to it first. Configured in `mcpist.toml`:
//!
//! ```toml
//! [consent]
//! default = "ask"       # for destructive tools no rule names
//! timeout_secs = 120    # an unanswered question is a refusal
//!
//! [[consent.rules]]     # the first rule that matches decides
//! clients = ["ci-*"]    # client globs; every client when absent
//! tools = ["github.close_issue", "notion.*"]
//! decision = "deny"     # or "ask", "allow"
//! ```
//!
//! The default applies to tools flagged destructive only; a rule applies
//! to every tool it names, so the owner can also ask before a write its
//! author did not flag.

use std::time::Duration;

use globset::GlobSet;
use serde::Deserialize;

use super::{GlobError, glob_set};

/// What happens to a call before it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The person at the client is asked, and the call runs only if they
    /// accept.
    #[default]
    Ask,
    /// It runs.
    Allow,
    /// It is refused.
    Deny,
}

impl Decision {
    fn as_str(self) -> &'static str {
        match self {
            Decision::Ask => "ask",
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// `[consent]` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentFile {
    /// For destructive tools no rule names; `ask` when absent.
    pub default: Option<Decision>,
    /// How long an asked person has to answer.
    pub timeout_secs: Option<u64>,
    /// Checked in order; the first that matches decides.
    #[serde(default)]
    pub rules: Vec<ConsentRuleFile>,
}

/// One `[[consent.rules]]` entry as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentRuleFile {
    /// Client globs; every client when absent.
    pub clients: Option<Vec<String>>,
    /// `module.tool` globs.
    pub tools: Vec<String>,
    /// What happens to the calls it matches.
    pub decision: Decision,
}

/// A consent rule in `mcpist.toml` that does not compile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("[[consent.rules]] number {number}: {source}")]
pub struct ConsentError {
    /// 1-based, in the order written.
    pub number: usize,
    /// What is wrong in it.
    #[source]
    pub source: GlobError,
}

#[derive(Debug, Clone)]
struct Rule {
    clients: Option<GlobSet>,
    tools: GlobSet,
    decision: Decision,
}

/// The compiled policy.
#[derive(Debug, Clone)]
pub struct ConsentPolicy {
    default: Decision,
    timeout: Duration,
    rules: Vec<Rule>,
}

/// How long a person has to answer when `timeout_secs` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

impl Default for ConsentPolicy {
    fn default() -> ConsentPolicy {
        ConsentPolicy {
            default: Decision::Ask,
            timeout: DEFAULT_TIMEOUT,
            rules: Vec::new(),
        }
    }
}

impl ConsentPolicy {
    /// Compile `[consent]`; a bad glob names its rule.
    pub fn compile(file: &ConsentFile) -> Result<ConsentPolicy, ConsentError> {
        let rules = file
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let error = |source| ConsentError {
                    number: i + 1,
                    source,
                };
                Ok(Rule {
                    clients: rule
                        .clients
                        .as_deref()
                        .map(|c| glob_set(c, "clients"))
                        .transpose()
                        .map_err(error)?,
                    tools: glob_set(&rule.tools, "tools").map_err(error)?,
                    decision: rule.decision,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(ConsentPolicy {
            default: file.default.unwrap_or_default(),
            timeout: file
                .timeout_secs
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_TIMEOUT),
            rules,
        })
    }

    /// What happens to `client`'s call of `module.tool`, a tool flagged
    /// `destructive` or not.
    pub fn decide(&self, client: &str, module: &str, tool: &str, destructive: bool) -> Decision {
        let name = format!("{module}.{tool}");
        let named = self.rules.iter().find(|rule| {
            rule.tools.is_match(&name) && rule.clients.as_ref().is_none_or(|c| c.is_match(client))
        });
        match named {
            Some(rule) => rule.decision,
            None if destructive => self.default,
            None => Decision::Allow,
        }
    }

    /// How long a person has to answer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// The `mcpist.toml` lines that give `client` `decision` for `module.tool`,
/// for an error message to show the owner.
pub fn rule_for(client: &str, module: &str, tool: &str, decision: Decision) -> String {
    let quoted = |text: &str| toml::Value::String(text.to_owned()).to_string();
    format!(
        "[[consent.rules]]\nclients = [{}]\ntools = [{}]\ndecision = \"{}\"",
        quoted(client),
        quoted(&format!("{module}.{tool}")),
        decision.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(toml_text: &str) -> ConsentPolicy {
        #[derive(Deserialize)]
        struct File {
            consent: ConsentFile,
        }
        let file: File = toml::from_str(toml_text).unwrap();
        ConsentPolicy::compile(&file.consent).unwrap()
    }

    #[test]
    fn destructive_tools_ask_by_default_and_the_first_matching_rule_decides() {
        let open = ConsentPolicy::default();
        assert_eq!(
            open.decide("any", "github", "close_issue", true),
            Decision::Ask
        );
        assert_eq!(
            open.decide("any", "github", "get_issue", false),
            Decision::Allow
        );
        assert_eq!(open.timeout(), DEFAULT_TIMEOUT);

        let owned = policy(
            r#"
            [consent]
            timeout_secs = 5
            [[consent.rules]]
            clients = ["phone"]
            tools = ["github.*"]
            decision = "deny"
            [[consent.rules]]
            tools = ["github.close_issue"]
            decision = "allow"
            [[consent.rules]]
            tools = ["github.create_issue"]
            decision = "ask"
            "#,
        );
        assert_eq!(owned.timeout(), Duration::from_secs(5));
        for (client, module, tool, destructive, expected) in [
            // The first rule, for the phone only.
            ("phone", "github", "close_issue", true, Decision::Deny),
            ("phone", "github", "get_issue", false, Decision::Deny),
            // The second, for everyone else.
            ("desk", "github", "close_issue", true, Decision::Allow),
            // A rule asks before a write its author did not flag destructive.
            ("desk", "github", "create_issue", false, Decision::Ask),
            // No rule: the default, for destructive tools only.
            ("desk", "notion", "archive", true, Decision::Ask),
            ("desk", "notion", "search", false, Decision::Allow),
        ] {
            assert_eq!(
                owned.decide(client, module, tool, destructive),
                expected,
                "{client} {module}.{tool}"
            );
        }

        let strict = policy("[consent]\ndefault = \"deny\"\n");
        assert_eq!(
            strict.decide("desk", "notion", "archive", true),
            Decision::Deny
        );
    }

    #[test]
    fn a_bad_glob_names_its_rule() {
        let file = ConsentFile {
            rules: vec![
                ConsentRuleFile {
                    clients: None,
                    tools: vec!["github.*".into()],
                    decision: Decision::Allow,
                },
                ConsentRuleFile {
                    clients: Some(vec!["[".into()]),
                    tools: vec!["x".into()],
                    decision: Decision::Deny,
                },
            ],
            ..ConsentFile::default()
        };
        let error = ConsentPolicy::compile(&file).unwrap_err();
        assert_eq!(error.number, 2);
        assert!(error.to_string().contains("clients"), "{error}");
    }

    #[test]
    fn the_suggested_rule_is_valid_toml_that_decides_as_it_says() {
        let line = rule_for("claude \"desk\"", "github", "close_issue", Decision::Allow);
        let toml_text = format!("[consent]\n{line}");
        let compiled = policy(&toml_text);
        assert_eq!(
            compiled.decide("claude \"desk\"", "github", "close_issue", true),
            Decision::Allow
        );
    }
}
