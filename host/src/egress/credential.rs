//! Attaching the owner's credential to a request, in the form the module's
//! binding names (`injection` in `wit/plugin.wit`), with no copy of the
//! secret left behind in memory the call does not wipe.

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::EgressError;
use crate::manifest::Injection;

/// `base64(username:secret)`, with no copy of the secret left behind.
pub(super) fn basic_credentials(username: &str, secret: &str) -> zeroize::Zeroizing<String> {
    let mut pair =
        zeroize::Zeroizing::new(String::with_capacity(username.len() + 1 + secret.len()));
    pair.push_str(username);
    pair.push(':');
    pair.push_str(secret);
    zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()))
}

pub(super) fn inject_credential(
    inject: &Injection,
    secret: &SecretString,
    headers: &mut HeaderMap,
    url: &mut Url,
) -> Result<(), EgressError> {
    let raw = secret.expose_secret();
    let header = |name: &str,
                  value: zeroize::Zeroizing<String>|
     -> Result<(HeaderName, HeaderValue), EgressError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| EgressError::Failed(format!("{name:?} is not a valid header name")))?;
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            EgressError::Failed(
                "the stored credential contains characters not allowed in an HTTP header"
                    .to_owned(),
            )
        })?;
        value.set_sensitive(true);
        Ok((name, value))
    };
    let (name, value) = match inject {
        Injection::Bearer => header(
            "authorization",
            zeroize::Zeroizing::new(format!("Bearer {raw}")),
        )?,
        Injection::Header { name, template } => header(
            name,
            zeroize::Zeroizing::new(template.replace("{secret}", raw)),
        )?,
        Injection::Basic { username } => {
            let mut value = zeroize::Zeroizing::new(String::from("Basic "));
            value.push_str(&basic_credentials(username, raw));
            header("authorization", value)?
        }
        Injection::Query { param } => {
            url.query_pairs_mut().append_pair(param, raw);
            return Ok(());
        }
    };
    headers.insert(name, value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injected(inject: Injection) -> (HeaderMap, Url) {
        let mut headers = HeaderMap::new();
        let mut url = Url::parse("https://api.example.com/items?page=2").unwrap();
        inject_credential(
            &inject,
            &SecretString::from("s3cr3t-token"),
            &mut headers,
            &mut url,
        )
        .unwrap();
        (headers, url)
    }

    #[test]
    fn each_injection_form_places_the_secret_where_the_binding_says() {
        let (headers, _) = injected(Injection::Bearer);
        assert_eq!(headers["authorization"], "Bearer s3cr3t-token");
        assert!(headers["authorization"].is_sensitive());
        let (headers, _) = injected(Injection::Header {
            name: "X-Api-Key".into(),
            template: "key={secret}".into(),
        });
        assert_eq!(headers["x-api-key"], "key=s3cr3t-token");
        let (headers, _) = injected(Injection::Basic {
            username: "bot".into(),
        });
        // base64("bot:s3cr3t-token")
        assert_eq!(headers["authorization"], "Basic Ym90OnMzY3IzdC10b2tlbg==");
        let (headers, url) = injected(Injection::Query {
            param: "api_key".into(),
        });
        assert!(headers.is_empty());
        assert_eq!(url.query(), Some("page=2&api_key=s3cr3t-token"));
    }
}
