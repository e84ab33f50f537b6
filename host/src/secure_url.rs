//! URLs of the services the host itself talks to (an identity provider,
//! a vault): never plain HTTP across a network.

/// `https://...`, or `http://` to a loopback address: what the host itself
/// fetches (an issuer's keys, a vault's secrets) over plain HTTP from
/// elsewhere could be read or swapped by anyone on the path.
pub fn https_or_loopback(url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(format!("{url:?} has no host")),
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        "http" => Err(format!(
            "{url:?} must use https (plain http is allowed only to a loopback address)"
        )),
        other => Err(format!("{url:?}: the scheme must be https, not {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::https_or_loopback;

    #[test]
    fn https_is_required_unless_loopback() {
        assert!(https_or_loopback("https://id.example.com").is_ok());
        assert!(https_or_loopback("http://127.0.0.1:9000").is_ok());
        assert!(https_or_loopback("http://localhost:9000/x").is_ok());
        let error = https_or_loopback("http://id.example.com").unwrap_err();
        assert!(error.contains("must use https"), "{error}");
        assert!(https_or_loopback("ftp://id.example.com").is_err());
    }
}
