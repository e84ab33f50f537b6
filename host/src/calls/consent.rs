//! Asking the person at the client before a call runs, when the owner's
//! consent policy says so ([`crate::policy::ConsentPolicy`]). The call path
//! decides whether to ask; how to ask (an MCP elicitation, now or in a
//! later round of the same request) is the front end's, through
//! [`ConsentAsker`].

use std::fmt::Write as _;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What the person is asked to agree to: one call, as it will run.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentQuestion {
    /// The client calling.
    pub client: String,
    /// The module.
    pub module: String,
    /// The tool.
    pub tool: String,
    /// The account the call acts for, when the module has a service.
    pub account: Option<String>,
    /// The arguments, as they will be given to the tool.
    pub arguments: Value,
    /// Whether the module flags the tool destructive.
    pub destructive: bool,
    /// For a plan (`run_plan`): its steps the policy asks about, by step
    /// id, answered all at once before the plan runs; empty for one call.
    pub covers: Vec<(String, ConsentQuestion)>,
}

/// Most arguments listed in the question; the rest are counted.
const SHOWN_ARGUMENTS: usize = 12;
/// Most characters of one argument's value shown.
const SHOWN_VALUE_CHARS: usize = 120;

impl ConsentQuestion {
    /// The question as the person reads it: what runs, for which account,
    /// with which arguments (each value cut to a readable length).
    pub fn message(&self) -> String {
        if !self.covers.is_empty() {
            return self.plan_message();
        }
        let mut message = format!(
            "Allow {}.{}{}?",
            self.module,
            self.tool,
            match &self.account {
                Some(account) => format!(" as account \"{account}\""),
                None => String::new(),
            }
        );
        if self.destructive {
            message.push_str(" Its module marks it as able to change or delete data.");
        }
        let arguments = self.arguments.as_object().filter(|a| !a.is_empty());
        match arguments {
            None => message.push_str("\nNo arguments."),
            Some(arguments) => {
                message.push_str("\nArguments:");
                for (name, value) in arguments.iter().take(SHOWN_ARGUMENTS) {
                    let _ = write!(message, "\n  {name}: {}", shown(value));
                }
                if arguments.len() > SHOWN_ARGUMENTS {
                    let _ = write!(
                        message,
                        "\n  ...and {} more",
                        arguments.len() - SHOWN_ARGUMENTS
                    );
                }
            }
        }
        message.push_str("\nAccept to run it once; decline to refuse it.");
        message
    }

    /// A plan's question: each step asked about, one line each, with its
    /// arguments as written (references to earlier steps' results show as
    /// such).
    fn plan_message(&self) -> String {
        let mut message = format!(
            "Allow {} step{} of this plan to run?",
            self.covers.len(),
            if self.covers.len() == 1 { "" } else { "s" }
        );
        for (id, step) in &self.covers {
            let _ = write!(message, "\n- step `{id}`: {}.{}", step.module, step.tool);
            if let Some(account) = &step.account {
                let _ = write!(message, " as account \"{account}\"");
            }
            if step.destructive {
                message.push_str(" (can change or delete data)");
            }
            if let Some(arguments) = step.arguments.as_object() {
                for (name, value) in arguments.iter().take(SHOWN_ARGUMENTS) {
                    let _ = write!(message, "\n    {name}: {}", shown(value));
                }
            }
        }
        message.push_str(
            "\nAccept to run them once; decline to refuse them (the plan's other steps still run).",
        );
        message
    }

    /// A digest of everything the person agrees to, so that an answer given
    /// for one call cannot be spent on another.
    pub fn digest(&self) -> String {
        let covers: Vec<(&String, String)> =
            self.covers.iter().map(|(id, q)| (id, q.digest())).collect();
        let canonical = serde_json::json!([
            self.client,
            self.module,
            self.tool,
            self.account,
            self.arguments,
            covers
        ]);
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// A value on one line, cut to [`SHOWN_VALUE_CHARS`].
fn shown(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match line.char_indices().nth(SHOWN_VALUE_CHARS) {
        Some((cut, _)) => format!("{}... ({} characters)", &line[..cut], line.chars().count()),
        None => line,
    }
}

/// The person's answer, or why there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsentAnswer {
    /// Yes: the call runs, once.
    Accepted,
    /// No.
    Declined,
    /// Dismissed without a choice.
    Cancelled,
    /// No answer in the time the policy gives.
    TimedOut,
    /// This client cannot be asked; the text says why.
    Unsupported(String),
    /// Asked; the answer comes with the client's retry of the same request
    /// (MCP 2026-07-28's input-required round), so nothing runs now.
    Deferred,
}

/// A front end's way of asking the person at its client.
#[async_trait]
pub trait ConsentAsker: Send + Sync {
    /// Ask `question`, waiting at most `timeout` for the answer.
    async fn ask(&self, question: &ConsentQuestion, timeout: Duration) -> ConsentAnswer;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn question(arguments: Value) -> ConsentQuestion {
        ConsentQuestion {
            client: "desk".into(),
            module: "github".into(),
            tool: "close_issue".into(),
            account: Some("work".into()),
            arguments,
            destructive: true,
            covers: Vec::new(),
        }
    }

    #[test]
    fn the_question_names_the_call_and_shows_its_arguments_readably() {
        let long = "x".repeat(500);
        let asked = question(json!({"owner": "acme", "number": 7, "reason": long, "note": "a\nb"}));
        let message = asked.message();
        assert!(
            message.starts_with("Allow github.close_issue as account \"work\"?"),
            "{message}"
        );
        assert!(message.contains("\n  owner: acme"), "{message}");
        assert!(message.contains("\n  number: 7"), "{message}");
        assert!(message.contains("\n  note: a b"), "{message}");
        assert!(message.contains("... (500 characters)"), "{message}");
        assert!(!message.contains(&long));

        let many: serde_json::Map<String, Value> =
            (0..20).map(|i| (format!("k{i:02}"), json!(i))).collect();
        let message = question(Value::Object(many)).message();
        assert!(message.contains("...and 8 more"), "{message}");
        assert!(question(json!({})).message().contains("No arguments."));
    }

    #[test]
    fn the_digest_binds_every_part_of_the_call() {
        let base = question(json!({"number": 7}));
        let mut other_arguments = base.clone();
        other_arguments.arguments = json!({"number": 8});
        let mut other_account = base.clone();
        other_account.account = Some("home".into());
        let mut other_client = base.clone();
        other_client.client = "phone".into();
        assert_eq!(base.digest(), question(json!({"number": 7})).digest());
        for other in [other_arguments, other_account, other_client] {
            assert_ne!(base.digest(), other.digest());
        }
    }
}
