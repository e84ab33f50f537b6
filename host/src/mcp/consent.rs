//! Asking the person at the client for consent, as MCP has it: a form
//! elicitation. Up to MCP 2025-11-25 the server sends `elicitation/create`
//! while the call waits; from 2026-07-28, which forbids server-to-client
//! requests, the call answers `input_required` with the same elicitation,
//! and the client retries the call with the person's answer and the
//! `requestState` it was given.
//!
//! That state is only a handle: what was asked stays here, in
//! [`PendingConsents`], bound to the digest of the call (client, module,
//! tool, account, arguments), used once, and expiring with the policy's
//! timeout. An answer cannot be carried over to another call, replayed,
//! or forged by editing the state.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rmcp::RoleServer;
use rmcp::model::{
    ElicitRequest, ElicitRequestParams, ElicitationAction, ElicitationSchema, InputRequest,
    InputRequiredResult, InputResponses, ProtocolVersion,
};
use rmcp::service::{Peer, RequestContext, ServiceError};

use crate::calls::{ConsentAnswer, ConsentAsker, ConsentQuestion};

/// The key of the consent question among a round's input requests.
const CONSENT_KEY: &str = "mcpist/consent";

/// Most questions awaiting an answer at once, over all clients: a client
/// that asks and never answers cannot grow this without bound.
const MAX_PENDING: usize = 1024;

/// Questions asked in an `input_required` round, awaiting the retry that
/// answers them. Shared by every session of the server.
#[derive(Debug, Default)]
pub struct PendingConsents {
    asked: Mutex<HashMap<String, Pending>>,
}

#[derive(Debug)]
struct Pending {
    digest: String,
    expires: Instant,
}

/// What a retry's state and answer showed.
enum Redeemed {
    /// No question under that handle (never asked, already answered, or
    /// forgotten when the server restarted): ask again.
    Unknown,
    /// Asked for another call: ask again, for this one.
    OtherCall,
    /// Asked, and answered too late.
    Expired,
    Answered,
}

impl PendingConsents {
    fn asked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.asked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remember `digest` for `timeout`; the handle the client echoes back.
    fn remember(&self, digest: String, timeout: Duration) -> String {
        let mut handle = [0u8; 32];
        getrandom::fill(&mut handle).expect("the OS random source works");
        let handle = hex::encode(handle);
        let now = Instant::now();
        let mut asked = self.asked();
        asked.retain(|_, pending| pending.expires > now);
        if asked.len() >= MAX_PENDING {
            // The oldest question goes: its retry will ask again.
            if let Some(oldest) = asked
                .iter()
                .min_by_key(|(_, p)| p.expires)
                .map(|(h, _)| h.clone())
            {
                asked.remove(&oldest);
            }
        }
        asked.insert(
            handle.clone(),
            Pending {
                digest,
                expires: now + timeout,
            },
        );
        handle
    }

    /// Spend the question under `handle` on the call with `digest`.
    fn redeem(&self, handle: &str, digest: &str) -> Redeemed {
        let Some(pending) = self.asked().remove(handle) else {
            return Redeemed::Unknown;
        };
        if pending.digest != digest {
            Redeemed::OtherCall
        } else if pending.expires <= Instant::now() {
            Redeemed::Expired
        } else {
            Redeemed::Answered
        }
    }
}

/// How this request can reach the person.
enum Channel {
    /// `elicitation/create`, now.
    Request(Peer<RoleServer>),
    /// An `input_required` round, and what the retry carries.
    Rounds {
        responses: Option<InputResponses>,
        state: Option<String>,
    },
    /// Not at all; the text says why.
    None(String),
}

/// One `tools/call` request's way of asking.
pub(super) struct Elicitation {
    channel: Channel,
    pending: Arc<PendingConsents>,
    /// The round to answer with, once a question is deferred to one.
    round: Mutex<Option<InputRequiredResult>>,
}

impl Elicitation {
    /// For the request `context`, retrying with `responses` and `state`
    /// when it answers an earlier round.
    pub fn new(
        context: &RequestContext<RoleServer>,
        responses: Option<InputResponses>,
        state: Option<String>,
        pending: Arc<PendingConsents>,
    ) -> Elicitation {
        let form = context
            .client_capabilities()
            .and_then(|c| c.elicitation)
            .is_some_and(|e| e.form.is_some() || e.url.is_none());
        let rounds = context
            .protocol_version()
            .is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        let channel = match (form, rounds) {
            (false, _) => Channel::None(
                "this client did not declare MCP's elicitation capability (form mode), so the person using it cannot be asked".to_owned(),
            ),
            (true, true) => Channel::Rounds { responses, state },
            (true, false) => Channel::Request(context.peer.clone()),
        };
        Elicitation {
            channel,
            pending,
            round: Mutex::new(None),
        }
    }

    /// The `input_required` result to send, if the call deferred its
    /// question to one.
    pub fn take_round(&self) -> Option<InputRequiredResult> {
        self.round.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn form(question: &ConsentQuestion) -> ElicitRequestParams {
        ElicitRequestParams::FormElicitationParams {
            meta: None,
            message: question.message(),
            requested_schema: ElicitationSchema::new(BTreeMap::new()),
        }
    }

    /// Ask in a later round: remember the question, and leave the round
    /// for the front end to send.
    fn defer(&self, question: &ConsentQuestion, timeout: Duration) -> ConsentAnswer {
        let handle = self.pending.remember(question.digest(), timeout);
        let requests = BTreeMap::from([(
            CONSENT_KEY.to_owned(),
            InputRequest::Elicitation(ElicitRequest::new(Self::form(question))),
        )]);
        *self.round.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(InputRequiredResult::new(Some(requests), Some(handle)));
        ConsentAnswer::Deferred
    }
}

fn answer(action: ElicitationAction) -> ConsentAnswer {
    match action {
        ElicitationAction::Accept => ConsentAnswer::Accepted,
        ElicitationAction::Decline => ConsentAnswer::Declined,
        // Cancel, or an action a later revision adds: not consent.
        _ => ConsentAnswer::Cancelled,
    }
}

#[async_trait]
impl ConsentAsker for Elicitation {
    async fn ask(&self, question: &ConsentQuestion, timeout: Duration) -> ConsentAnswer {
        match &self.channel {
            Channel::None(why) => ConsentAnswer::Unsupported(why.clone()),
            Channel::Request(peer) => {
                match peer
                    .create_elicitation_with_timeout(Self::form(question), Some(timeout))
                    .await
                {
                    Ok(result) => answer(result.action),
                    Err(ServiceError::Timeout { .. }) => ConsentAnswer::TimedOut,
                    Err(error) => ConsentAnswer::Unsupported(format!(
                        "the consent question could not be asked ({error})"
                    )),
                }
            }
            Channel::Rounds { responses, state } => {
                let given = responses.as_ref().and_then(|r| r.get(CONSENT_KEY));
                let (Some(given), Some(state)) = (given, state) else {
                    return self.defer(question, timeout);
                };
                match self.pending.redeem(state, &question.digest()) {
                    Redeemed::Unknown | Redeemed::OtherCall => self.defer(question, timeout),
                    Redeemed::Expired => ConsentAnswer::TimedOut,
                    Redeemed::Answered => {
                        match serde_json::from_value::<rmcp::model::ElicitResult>(given.clone()) {
                            Ok(result) => answer(result.action),
                            // Not an answer to an elicitation: not consent.
                            Err(_) => ConsentAnswer::Cancelled,
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_is_spent_once_on_the_call_it_was_asked_for() {
        let pending = PendingConsents::default();
        let minute = Duration::from_secs(60);
        let handle = pending.remember("call-a".into(), minute);
        assert!(matches!(
            pending.redeem(&handle, "call-b"),
            Redeemed::OtherCall
        ));
        // Refused for another call, it is gone for this one too.
        assert!(matches!(
            pending.redeem(&handle, "call-a"),
            Redeemed::Unknown
        ));

        let handle = pending.remember("call-a".into(), minute);
        assert!(matches!(
            pending.redeem(&handle, "call-a"),
            Redeemed::Answered
        ));
        assert!(matches!(
            pending.redeem(&handle, "call-a"),
            Redeemed::Unknown
        ));
        assert!(matches!(
            pending.redeem("forged", "call-a"),
            Redeemed::Unknown
        ));

        let handle = pending.remember("call-a".into(), Duration::ZERO);
        assert!(matches!(
            pending.redeem(&handle, "call-a"),
            Redeemed::Expired
        ));
    }

    #[test]
    fn questions_never_answered_do_not_pile_up() {
        let pending = PendingConsents::default();
        let first = pending.remember("first".into(), Duration::from_secs(60));
        for i in 0..MAX_PENDING {
            pending.remember(format!("call-{i}"), Duration::from_secs(60 + i as u64));
        }
        assert_eq!(pending.asked().len(), MAX_PENDING);
        assert!(matches!(pending.redeem(&first, "first"), Redeemed::Unknown));
    }
}
