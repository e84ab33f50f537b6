//! Entry points for the fuzz targets in `fuzz/`, and the replay of their
//! corpora as ordinary tests (`cargo test` runs every saved input through
//! the same function). Each takes arbitrary bytes, runs one parser, check
//! or guard the outside world can reach, and asserts what must hold
//! whatever the input; a panic is a finding.
//!
//! Built only for tests and with the `fuzzing` feature: not part of the API.

use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;

use serde_json::{Value, json};
use url::Url;

use crate::catalog::schema::ArgumentValidator;
use crate::egress::ModulePolicy;
use crate::egress::address::{AddressClass, classify, refusal};
use crate::manifest::{CredentialBinding, Injection, ModuleManifest, ToolFlags, ToolSpec};
use crate::mcp::meta_tools::{self, CALL_MODULE_TOOL, CallModuleToolArgs};
use crate::mcp::stdio_input;
use crate::registry::{Guards, HostRule};

/// A fuzz target: any bytes in, a panic when an invariant breaks.
pub type Target = fn(&[u8]);

/// The fuzz targets, by name (the folder names under `fuzz/corpus`).
pub const TARGETS: &[(&str, Target)] = &[
    ("mcp_message", mcp_message),
    ("egress_url", egress_url),
    ("address", address),
    ("lock_and_config", lock_and_config),
    ("audit_line", audit_line),
    ("guards", guards),
];

/// The MCP message path: the stdio screen, the JSON-RPC envelope, the
/// meta-tool's arguments and a tool's argument validation.
pub fn mcp_message(data: &[u8]) {
    let screened = stdio_input::screen_all(data);
    for line in screened.split_inclusive(|b| *b == b'\n') {
        assert!(
            stdio_input::depth(line) <= stdio_input::MAX_DEPTH,
            "a line nested too deep passed the screen"
        );
        let Ok(message) = serde_json::from_slice::<rmcp::model::ClientJsonRpcMessage>(line) else {
            continue;
        };
        let Ok(Value::Object(message)) = serde_json::to_value(&message) else {
            continue;
        };
        let params = &message.get("params").cloned().unwrap_or_default();
        if params["name"] != CALL_MODULE_TOOL {
            continue;
        }
        let arguments = params["arguments"].clone();
        if let Ok(call) = meta_tools::parse::<CallModuleToolArgs>(arguments)
            && let Some(arguments) = call.arguments
        {
            // Whatever the verdict, it is a message for the model.
            if let Err(problems) = tool_validator().validate(&arguments) {
                assert!(!problems.is_empty());
            }
        }
    }
}

fn tool_validator() -> &'static ArgumentValidator {
    static VALIDATOR: OnceLock<ArgumentValidator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema = json!({
            "type": "object",
            "properties": {
                "owner": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,39}$"},
                "labels": {"type": "array", "items": {"type": "string"}, "maxItems": 10},
                "state": {"enum": ["open", "closed"]},
                "page": {"type": "integer", "minimum": 1},
                "filter": {"type": "object", "properties": {"since": {"type": "string", "format": "date-time"}}}
            },
            "required": ["owner"]
        });
        ArgumentValidator::new(&crate::catalog::schema::close_object_schemas(&schema))
            .expect("the schema compiles")
    })
}

/// A URL a module asks for, checked against the owner's method and path
/// rules: the first line is the method, the rest the URL.
pub fn egress_url(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (method, url) = text.split_once('\n').unwrap_or(("GET", &text));
    let Ok(url) = Url::parse(url) else { return };
    let rule = HostRule {
        methods: vec!["GET".into()],
        paths: vec!["/public/".into(), "/repos/".into()],
        allow_private: false,
    };
    let policy = policy_with(rule);
    // Only api.example.com has a rule; *.example.org allows everything.
    let ruled = policy
        .check(method, &url)
        .is_ok_and(|grant| grant.declared == "https://api.example.com");
    if ruled {
        let path = url.path();
        assert!(
            method.eq_ignore_ascii_case("GET"),
            "{method} passed a GET rule"
        );
        assert!(
            path.starts_with("/public/") || path.starts_with("/repos/"),
            "{path} passed the prefix rule"
        );
        let lower = path.to_ascii_lowercase();
        for encoded in ["%2f", "%5c", "%2e", "\\", "/../", "/./"] {
            assert!(!lower.contains(encoded), "{path} passed with {encoded}");
        }
    }
}

fn policy_with(rule: HostRule) -> ModulePolicy {
    ModulePolicy::new(
        "fuzz",
        &[
            "https://api.example.com".to_owned(),
            "https://*.example.org".to_owned(),
        ],
        &[CredentialBinding {
            service: "svc".into(),
            inject: Injection::Bearer,
            hosts: vec!["https://api.example.com".into()],
        }],
        &[("https://api.example.com".to_owned(), rule)]
            .into_iter()
            .collect(),
    )
}

/// Address classification: 4 bytes are an IPv4 address, 16 an IPv6 one.
pub fn address(data: &[u8]) {
    let ip: IpAddr = match data.len() {
        4 => <[u8; 4]>::try_from(data).expect("4 bytes").into(),
        16 => <[u8; 16]>::try_from(data).expect("16 bytes").into(),
        _ => match std::str::from_utf8(data)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            Some(ip) => ip,
            None => return,
        },
    };
    let class = classify(ip);
    if class == AddressClass::Metadata {
        assert!(refusal(ip, true).is_some(), "{ip}: metadata allowed");
    }
    if let IpAddr::V4(v4) = ip {
        // The same address hidden in IPv6 is judged the same.
        assert_eq!(classify(IpAddr::V6(v4.to_ipv6_mapped())), class, "{ip}");
    }
    if matches!(class, AddressClass::Private(_)) {
        assert!(refusal(ip, false).is_some(), "{ip}: private allowed");
    }
}

/// `registry.lock` and `mcpist.toml`, from any text.
pub fn lock_and_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let home = Path::new("/nonexistent/mcpist-fuzz");
    if let Ok(lock) = crate::registry::Lock::parse(&text, &home.join("registry.lock")) {
        // What was read is written back the same way.
        let again = crate::registry::Lock::parse(&lock.to_toml(), Path::new("again"))
            .expect("a lock reads back what it writes");
        assert_eq!(again, lock);
    }
    let _ = crate::config::Config::parse_text(&text, home);
}

/// One audit log line, as `open`, `verify` and `tail` read it.
pub fn audit_line(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let line = text.lines().next().unwrap_or_default();
    let _ = crate::audit::parse_record(line);
    let shown = crate::untrusted_text::escape(&text);
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
    let json = crate::untrusted_text::escape_json(&text);
    assert!(!json.chars().any(char::is_control), "{json:?}");
}

/// The guards, on a module whose every text is the input.
pub fn guards(data: &[u8]) {
    let text = String::from_utf8_lossy(data).into_owned();
    let input_schema = match serde_json::from_slice::<Value>(data) {
        Ok(schema @ Value::Object(_)) => schema,
        _ => {
            json!({"type": "object", "properties": {text.clone(): {"type": "string", "description": text}}})
        }
    };
    let manifest = ModuleManifest {
        name: "fuzz".into(),
        version: "1.0.0".into(),
        description: text.clone(),
        tools: vec![ToolSpec {
            name: "t".into(),
            description: text.clone(),
            input_schema,
            output_schema: None,
            flags: ToolFlags::default(),
        }],
        hosts: vec![],
        credentials: vec![],
    };
    let _ = Guards::default().inspect(&manifest, &[]);
    let shown = crate::registry::guards::reveal(&text);
    assert!(!shown.contains('\u{200B}') && !shown.contains('\u{202E}'));
}

#[cfg(test)]
mod replay {
    /// Every saved input of every target (the corpora the fuzzers built,
    /// and the crashes they found, once fixed) runs as a test.
    #[test]
    fn the_fuzz_corpora_replay_cleanly() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        let mut replayed = 0;
        for (name, target) in super::TARGETS {
            let dir = root.join(name);
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}: the corpus is committed", dir.display()));
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name}: {} fails", path.display());
                replayed += 1;
            }
        }
        assert!(
            replayed >= super::TARGETS.len(),
            "only {replayed} inputs replayed"
        );
    }
}
