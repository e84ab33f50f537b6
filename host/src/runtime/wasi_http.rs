//! `wasi:http/outgoing-handler`, the way out that every language's usual
//! HTTP client speaks (JavaScript `fetch`, Go `net/http`, Python's and
//! Rust's wasi-http clients), sent through the same [`GuestServices`] as the
//! `mcpist:plugin/http` import: the same approved hosts, owner's rules,
//! address checks, redirects checked hop by hop, credential injection,
//! redaction, limits and audit record.
//!
//! wasmtime-wasi-http owns the resources (fields, bodies, futures) and hands
//! each finished request to [`WasiHttpHooks::send_request`]; it is built
//! without its default sender, so no request can leave any other way. The
//! request body is read whole (up to the egress limit) and the answer handed
//! back whole, as the egress layer reads and redacts it whole.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::services::{GuestServices, HttpError, InboundResponse, OutboundRequest};

/// Headers the guest's HTTP client may add that describe the framing of the
/// message rather than its content: the host frames the request itself.
const FRAMING_HEADERS: [http::HeaderName; 2] = [
    http::header::CONTENT_LENGTH,
    http::header::TRANSFER_ENCODING,
];

/// The `wasi:http` hooks of one call.
pub(crate) struct EgressHooks {
    module: Arc<str>,
    services: Arc<dyn GuestServices>,
    refusal: Refusal,
}

/// Why the host refused the call's first refused `wasi:http` request.
/// `wasi:http` can only tell the guest `HTTP-request-denied`; the reason is
/// added to the call's error, so the person at the client learns what to
/// approve.
#[derive(Clone, Default)]
struct Refusal(Arc<Mutex<Option<String>>>);

impl Refusal {
    /// Note the refusal (the first one counts) and log it. Called before
    /// the request's body is dropped, so that the guest, which sees its body
    /// stream close, cannot end the call before the reason is kept.
    fn record(&self, module: &str, message: String) -> Error {
        tracing::warn!(module = %module, "refused outbound HTTP request (wasi:http): {message}");
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(message);
        Error::HttpRequestDenied
    }
}

impl EgressHooks {
    pub fn new(module: &str, services: Arc<dyn GuestServices>) -> EgressHooks {
        EgressHooks {
            module: module.into(),
            services,
            refusal: Refusal::default(),
        }
    }

    /// The reason the first refused `wasi:http` request of the call was
    /// refused, if one was.
    pub fn refusal(&self) -> Option<String> {
        self.refusal
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

type BoxedFuture<T> = Box<dyn Future<Output = T> + Send>;

impl WasiHttpHooks for EgressHooks {
    /// The guest's `Host` header names the logical host, which the egress
    /// layer takes from the URL; it is never sent as the guest wrote it.
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _response_errors: BoxedFuture<Result<(), Error>>,
    ) -> BoxedFuture<Result<(http::Response<WasiBody>, BoxedFuture<Result<(), Error>>), Error>>
    {
        let services = self.services.clone();
        let module = self.module.clone();
        let refusal = self.refusal.clone();
        Box::new(async move {
            let limit = services.max_request_bytes();
            let outbound =
                read_request(request, limit, |message| refusal.record(&module, message)).await?;
            match services.send_http(outbound).await {
                Ok(response) => {
                    let done: BoxedFuture<Result<(), Error>> = Box::new(async { Ok(()) });
                    Ok((to_response(response)?, done))
                }
                Err(HttpError::Denied(message)) => Err(refusal.record(&module, message)),
                Err(HttpError::Failed(message)) => {
                    tracing::info!(module = %module, "outbound HTTP request failed (wasi:http): {message}");
                    Err(Error::InternalError(Some(message)))
                }
            }
        })
    }
}

/// The guest's request as the egress layer takes it: the body read whole,
/// up to `limit` bytes. On a refusal the body is still held: see
/// [`Refusal::record`].
async fn read_request(
    request: http::Request<WasiBody>,
    limit: usize,
    refuse: impl Fn(String) -> Error,
) -> Result<OutboundRequest, Error> {
    let (parts, mut body) = request.into_parts();
    let mut headers = Vec::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        if FRAMING_HEADERS.contains(name) {
            continue;
        }
        let value = value
            .to_str()
            .map_err(|_| refuse(format!("the value of header {name} is not valid text")))?;
        headers.push((name.as_str().to_owned(), value.to_owned()));
    }
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| refuse(format!("the request body could not be read: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(refuse(format!(
                    "the request body is larger than the limit of {limit} bytes"
                )));
            }
            bytes.extend_from_slice(&data);
        }
    }
    let has_body =
        !bytes.is_empty() || !matches!(parts.method, http::Method::GET | http::Method::HEAD);
    Ok(OutboundRequest {
        method: parts.method.as_str().to_owned(),
        url: parts.uri.to_string(),
        headers,
        body: has_body.then_some(bytes),
    })
}

/// The egress layer's answer as a `wasi:http` response. The body may have
/// been redacted, so its length is stated anew.
fn to_response(response: InboundResponse) -> Result<http::Response<WasiBody>, Error> {
    let mut builder = http::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        if FRAMING_HEADERS.contains(&name) {
            continue;
        }
        if let Ok(value) = http::HeaderValue::from_str(value) {
            builder = builder.header(name, value);
        }
    }
    let length = response.body.len();
    let body = Full::new(Bytes::from(response.body))
        .map_err(|never| match never {})
        .boxed_unsync();
    builder
        .header(http::header::CONTENT_LENGTH, length)
        .body(body)
        .map_err(|_| Error::HttpProtocolError)
}
