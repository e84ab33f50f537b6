//! Endpoints of the providers MCPist ships modules for, so that the owner
//! gives only the client id (and stores the secret). Anything in
//! `[oauth.SERVICE]` overrides the preset.

use url::Url;

use super::{ClientAuth, Endpoints};

/// A provider's known settings.
pub struct Preset {
    /// Its endpoints.
    pub endpoints: Endpoints,
    /// The scopes the bundled module needs.
    pub scopes: &'static [&'static str],
    /// Authorization parameters the provider needs to issue what MCPist
    /// needs (a refresh token).
    pub extra_params: &'static [(&'static str, &'static str)],
    /// How the provider expects the app to authenticate.
    pub client_auth: ClientAuth,
}

fn url(s: &str) -> Url {
    Url::parse(s).expect("preset URLs are valid")
}

/// The preset for `service`, if MCPist knows its provider.
pub fn preset(service: &str) -> Option<Preset> {
    match service {
        // Google's OAuth 2.0 for web server and installed apps. A refresh
        // token comes only with `access_type=offline`, and again on a later
        // connect only with `prompt=consent`. Its device flow does not
        // allow the Calendar scopes, so no device endpoint is offered.
        "google" => Some(Preset {
            endpoints: Endpoints {
                issuer: Some("https://accounts.google.com".to_owned()),
                authorization: Some(url("https://accounts.google.com/o/oauth2/v2/auth")),
                token: url("https://oauth2.googleapis.com/token"),
                revocation: Some(url("https://oauth2.googleapis.com/revoke")),
                device_authorization: None,
            },
            scopes: &[
                "https://www.googleapis.com/auth/calendar.readonly",
                "https://www.googleapis.com/auth/calendar.events",
            ],
            extra_params: &[("access_type", "offline"), ("prompt", "consent")],
            client_auth: ClientAuth::ClientSecretPost,
        }),
        // GitHub OAuth apps and GitHub Apps acting for a user. GitHub has
        // no RFC 7009 endpoint (revocation is a REST call with the app's
        // credentials, or the owner's settings page).
        "github" => Some(Preset {
            endpoints: Endpoints {
                issuer: None,
                authorization: Some(url("https://github.com/login/oauth/authorize")),
                token: url("https://github.com/login/oauth/access_token"),
                revocation: None,
                device_authorization: Some(url("https://github.com/login/device/code")),
            },
            scopes: &["repo"],
            extra_params: &[],
            client_auth: ClientAuth::ClientSecretPost,
        }),
        _ => None,
    }
}
