use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use mcpist_plugin::{Call, Declaration, ToolError, ToolFlags, ToolSpec};

mod qr;

mcpist_plugin::module!(declaration);

/// Most patterns compile to far less; this keeps a hostile pattern from using
/// the whole sandbox memory limit.
const REGEX_SIZE_LIMIT: usize = 2 << 20;
const MAX_MATCHES: usize = 1000;

fn declaration() -> Declaration {
    let pure = ToolFlags::READ_ONLY | ToolFlags::IDEMPOTENT | ToolFlags::CONCURRENCY_SAFE;
    let tool = |name: &str, description: &str| ToolSpec::new(name, description, pure);
    Declaration::new(
        "text",
        env!("CARGO_PKG_VERSION"),
        "Text utilities: hashes, base64, JSON pointer queries, counts, regular expression matching and QR codes.",
    )
    .tool(
        tool(
            "hash",
            "Hash UTF-8 text with SHA-256 (default), SHA-512, SHA-1 or MD5 and return the digest in hex or base64.",
        )
        .output(json!({
            "type": "object",
            "properties": {"algorithm": {"type": "string"}, "digest": {"type": "string"}},
            "required": ["algorithm", "digest"]
        })),
        hash,
    )
    .tool(
        tool(
            "base64_encode",
            "Encode UTF-8 text as base64 (standard or URL-safe alphabet, with or without padding).",
        )
        .output(json!({
            "type": "object",
            "properties": {"data": {"type": "string"}},
            "required": ["data"]
        })),
        base64_encode,
    )
    .tool(
        tool(
            "base64_decode",
            "Decode base64 (standard or URL-safe alphabet; padding optional) into UTF-8 text. Fails if the decoded bytes are not UTF-8.",
        )
        .output(json!({
            "type": "object",
            "properties": {"text": {"type": "string"}, "bytes": {"type": "integer"}},
            "required": ["text", "bytes"]
        })),
        base64_decode,
    )
    .tool(
        tool(
            "json_query",
            "Parse a JSON document and return the value at an RFC 6901 JSON Pointer (e.g. /items/0/name; the empty pointer is the whole document).",
        )
        .output(json!({
            "type": "object",
            "properties": {"found": {"type": "boolean"}, "value": {}},
            "required": ["found"]
        })),
        json_query,
    )
    .tool(
        tool(
            "count",
            "Count the bytes (UTF-8), characters (Unicode scalar values), words (separated by whitespace) and lines of a text.",
        )
        .output(json!({
            "type": "object",
            "properties": {
                "bytes": {"type": "integer"},
                "chars": {"type": "integer"},
                "words": {"type": "integer"},
                "lines": {"type": "integer"}
            },
            "required": ["bytes", "chars", "words", "lines"]
        })),
        count,
    )
    .tool(
        tool(
            "regex_match",
            "Find matches of a regular expression (Rust regex syntax: no look-around or backreferences) in a text. Returns each match with its byte offsets and capture groups.",
        )
        .output(json!({
            "type": "object",
            "properties": {
                "matched": {"type": "boolean"},
                "truncated": {"type": "boolean"},
                "matches": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "text": {"type": "string"},
                            "start": {"type": "integer"},
                            "end": {"type": "integer"},
                            "groups": {"type": "array", "items": {"type": ["string", "null"]}},
                            "named": {"type": "object", "additionalProperties": {"type": ["string", "null"]}}
                        },
                        "required": ["text", "start", "end", "groups", "named"]
                    }
                }
            },
            "required": ["matched", "truncated", "matches"]
        })),
        regex_match,
    )
    .tool(
        tool(
            "qr_code",
            "Make a QR code of a text (a URL, contact details, any UTF-8 up to 2048 bytes) and return it as a PNG image, with a line saying its size.",
        ),
        qr::qr_code,
    )
}

#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
enum Algorithm {
    #[default]
    Sha256,
    Sha512,
    Sha1,
    Md5,
}

#[derive(Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
enum Encoding {
    #[default]
    Hex,
    Base64,
}

#[derive(Deserialize, JsonSchema)]
struct HashArgs {
    /// Text to hash (its UTF-8 bytes).
    text: String,
    #[serde(default)]
    algorithm: Algorithm,
    #[serde(default)]
    encoding: Encoding,
}

fn hash(args: HashArgs, _: &mut Call) -> Result<Value, ToolError> {
    use sha2::Digest;
    let bytes = args.text.as_bytes();
    let (name, digest): (&str, Vec<u8>) = match args.algorithm {
        Algorithm::Sha256 => ("sha256", sha2::Sha256::digest(bytes).to_vec()),
        Algorithm::Sha512 => ("sha512", sha2::Sha512::digest(bytes).to_vec()),
        Algorithm::Sha1 => ("sha1", sha1::Sha1::digest(bytes).to_vec()),
        Algorithm::Md5 => ("md5", md5::Md5::digest(bytes).to_vec()),
    };
    let digest = match args.encoding {
        Encoding::Hex => digest.iter().map(|b| format!("{b:02x}")).collect(),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(&digest),
    };
    Ok(json!({"algorithm": name, "digest": digest}))
}

#[derive(Deserialize, Serialize, JsonSchema, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Alphabet {
    #[default]
    Standard,
    UrlSafe,
}

#[derive(Deserialize, JsonSchema)]
struct EncodeArgs {
    text: String,
    #[serde(default)]
    alphabet: Alphabet,
    #[serde(default = "padded")]
    padding: bool,
}

fn padded() -> bool {
    true
}

fn base64_encode(args: EncodeArgs, _: &mut Call) -> Result<Value, ToolError> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let engine = match (args.alphabet, args.padding) {
        (Alphabet::Standard, true) => &STANDARD,
        (Alphabet::Standard, false) => &STANDARD_NO_PAD,
        (Alphabet::UrlSafe, true) => &URL_SAFE,
        (Alphabet::UrlSafe, false) => &URL_SAFE_NO_PAD,
    };
    Ok(json!({"data": engine.encode(args.text.as_bytes())}))
}

#[derive(Deserialize, JsonSchema)]
struct DecodeArgs {
    data: String,
    #[serde(default)]
    alphabet: Alphabet,
}

fn base64_decode(args: DecodeArgs, _: &mut Call) -> Result<Value, ToolError> {
    use base64::alphabet;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let engine = match args.alphabet {
        Alphabet::Standard => GeneralPurpose::new(&alphabet::STANDARD, config),
        Alphabet::UrlSafe => GeneralPurpose::new(&alphabet::URL_SAFE, config),
    };
    let bytes = engine
        .decode(args.data.trim())
        .map_err(|e| ToolError::InvalidArguments(format!("data is not valid base64: {e}")))?;
    let len = bytes.len();
    let text = String::from_utf8(bytes).map_err(|e| {
        ToolError::Failed(format!(
            "the {len} decoded bytes are not UTF-8 text (invalid at byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok(json!({"text": text, "bytes": len}))
}

#[derive(Deserialize, JsonSchema)]
struct QueryArgs {
    /// The JSON document, as text.
    json: String,
    /// RFC 6901 JSON Pointer.
    pointer: String,
}

fn json_query(args: QueryArgs, _: &mut Call) -> Result<Value, ToolError> {
    if !args.pointer.is_empty() && !args.pointer.starts_with('/') {
        return Err(ToolError::InvalidArguments(format!(
            "pointer {:?} must be empty or start with '/', e.g. /items/0",
            args.pointer
        )));
    }
    let document: Value = serde_json::from_str(&args.json)
        .map_err(|e| ToolError::InvalidArguments(format!("json is not valid JSON: {e}")))?;
    Ok(match document.pointer(&args.pointer) {
        Some(value) => json!({"found": true, "value": value}),
        None => json!({"found": false}),
    })
}

#[derive(Deserialize, JsonSchema)]
struct CountArgs {
    text: String,
}

fn count(args: CountArgs, _: &mut Call) -> Result<Value, ToolError> {
    let text = args.text;
    Ok(json!({
        "bytes": text.len(),
        "chars": text.chars().count(),
        "words": text.split_whitespace().count(),
        "lines": text.lines().count(),
    }))
}

#[derive(Deserialize, JsonSchema)]
struct RegexArgs {
    text: String,
    pattern: String,
    #[serde(default)]
    case_insensitive: bool,
    /// Maximum number of matches to return.
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = MAX_MATCHES))]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

fn regex_match(args: RegexArgs, _: &mut Call) -> Result<Value, ToolError> {
    let re = regex::RegexBuilder::new(&args.pattern)
        .case_insensitive(args.case_insensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| ToolError::InvalidArguments(format!("pattern is not a valid regex: {e}")))?;
    // The host checked the bounds against the schema.
    let limit = args.limit;
    let names: Vec<Option<&str>> = re.capture_names().collect();
    let mut matches = Vec::new();
    let mut truncated = false;
    for caps in re.captures_iter(&args.text) {
        if matches.len() == limit {
            truncated = true;
            break;
        }
        let whole = caps.get(0).expect("group 0 always participates in a match");
        let groups: Vec<Option<&str>> = (1..caps.len())
            .map(|i| caps.get(i).map(|m| m.as_str()))
            .collect();
        let named: serde_json::Map<String, Value> = names
            .iter()
            .flatten()
            .map(|name| (name.to_string(), json!(caps.name(name).map(|m| m.as_str()))))
            .collect();
        matches.push(json!({
            "text": whole.as_str(),
            "start": whole.start(),
            "end": whole.end(),
            "groups": groups,
            "named": named,
        }));
    }
    Ok(json!({"matched": !matches.is_empty(), "truncated": truncated, "matches": matches}))
}
