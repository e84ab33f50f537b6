//! What a module's result may carry, and the checks it passes before it
//! leaves the sandbox: one size limit over everything, JSON where JSON is
//! promised, bytes that are what their media type says, and links that are
//! web addresses.
//!
//! The media check matters because a client decodes and renders what it is
//! told is an image: a module (or an upstream answer it passed on) cannot
//! get a script or an executable rendered by calling it `image/png`.

use serde_json::Value;

use super::world::results;

/// A piece of a tool's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentItem {
    /// Plain text.
    Text(String),
    /// JSON text (shown to clients as text).
    Json(String),
    /// An image, its bytes checked against its type.
    Image(Media),
    /// Audio, its bytes checked against its type.
    Audio(Media),
    /// A link to something the client may fetch.
    ResourceLink(ResourceLink),
    /// A resource carried whole.
    Resource(EmbeddedResource),
}

/// Bytes and their media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// E.g. `image/png`.
    pub mime_type: String,
    /// The raw bytes (encoded as base64 only on the wire).
    pub data: Vec<u8>,
}

/// A link to a resource, with what the module said about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceLink {
    /// An absolute `https://` or `http://` URL.
    pub uri: String,
    /// A short identifier-like name.
    pub name: String,
    /// A title for people.
    pub title: Option<String>,
    /// What it is.
    pub description: Option<String>,
    /// Its media type, as the module says.
    pub mime_type: Option<String>,
    /// Its size in bytes, as the module says.
    pub size: Option<u64>,
}

/// A resource carried in the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedResource {
    /// An absolute URI naming it.
    pub uri: String,
    /// Its media type (checked against a blob's bytes).
    pub mime_type: Option<String>,
    /// Its text or bytes.
    pub contents: ResourceContents,
}

/// The contents of an embedded resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceContents {
    /// Text.
    Text(String),
    /// Bytes (encoded as base64 only on the wire).
    Blob(Vec<u8>),
}

/// A tool's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    /// What the client shows.
    pub content: Vec<ContentItem>,
    /// The result as JSON, when the tool returns one.
    pub structured: Option<Value>,
}

/// Why a result was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OutputError {
    #[error("{size} bytes, more than the output limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("{0}")]
    Invalid(String),
}

/// The image and audio types a result may carry, each with the type `infer`
/// names for the same bytes where the two spellings differ.
const IMAGE_TYPES: [(&str, &str); 4] = [
    ("image/png", "image/png"),
    ("image/jpeg", "image/jpeg"),
    ("image/gif", "image/gif"),
    ("image/webp", "image/webp"),
];
const AUDIO_TYPES: [(&str, &str); 4] = [
    ("audio/wav", "audio/x-wav"),
    ("audio/mpeg", "audio/mpeg"),
    ("audio/ogg", "audio/ogg"),
    ("audio/flac", "audio/x-flac"),
];

/// Check a module's result and turn it into the host's terms.
pub(crate) fn checked(
    output: results::CallOutput,
    limit: usize,
) -> Result<ToolOutput, OutputError> {
    let size = output.content.iter().map(size_of).sum::<usize>()
        + output.structured.as_ref().map_or(0, String::len);
    if size > limit {
        return Err(OutputError::TooLarge { size, limit });
    }
    let structured = output
        .structured
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| OutputError::Invalid(format!("the structured result is not JSON: {e}")))?;
    let content = output
        .content
        .into_iter()
        .enumerate()
        .map(|(index, piece)| {
            checked_piece(piece).map_err(|problem| {
                OutputError::Invalid(format!("content {}: {problem}", index + 1))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(ToolOutput {
        content,
        structured,
    })
}

/// Bytes a piece holds, as the module produced them (base64 on the wire
/// adds a third to the bytes of media and blobs).
fn size_of(piece: &results::Content) -> usize {
    use results::Content as C;
    let optional = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    match piece {
        C::Text(text) | C::Json(text) => text.len(),
        C::Image(media) | C::Audio(media) => media.mime_type.len() + media.data.len(),
        C::ResourceLink(link) => {
            link.uri.len()
                + link.name.len()
                + optional(&link.title)
                + optional(&link.description)
                + optional(&link.mime_type)
        }
        C::Resource(resource) => {
            resource.uri.len()
                + optional(&resource.mime_type)
                + match &resource.contents {
                    results::ResourceContents::Text(text) => text.len(),
                    results::ResourceContents::Blob(bytes) => bytes.len(),
                }
        }
    }
}

fn checked_piece(piece: results::Content) -> Result<ContentItem, String> {
    use results::Content as C;
    Ok(match piece {
        C::Text(text) => ContentItem::Text(text),
        C::Json(text) => {
            serde_json::from_str::<serde::de::IgnoredAny>(&text)
                .map_err(|e| format!("`json` content is not JSON: {e}"))?;
            ContentItem::Json(text)
        }
        C::Image(media) => ContentItem::Image(checked_media("image", &IMAGE_TYPES, media)?),
        C::Audio(media) => ContentItem::Audio(checked_media("audio", &AUDIO_TYPES, media)?),
        C::ResourceLink(link) => {
            let url = url::Url::parse(&link.uri)
                .map_err(|e| format!("resource link `{}` is not a URL: {e}", link.uri))?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(format!(
                    "resource link `{}` is not an https:// or http:// URL",
                    link.uri
                ));
            }
            if link.name.is_empty() {
                return Err(format!("resource link `{}` has no name", link.uri));
            }
            ContentItem::ResourceLink(ResourceLink {
                uri: link.uri,
                name: link.name,
                title: link.title,
                description: link.description,
                mime_type: link.mime_type,
                size: link.size,
            })
        }
        C::Resource(resource) => {
            url::Url::parse(&resource.uri).map_err(|e| {
                format!(
                    "embedded resource `{}` has no absolute URI: {e}",
                    resource.uri
                )
            })?;
            let contents = match resource.contents {
                results::ResourceContents::Text(text) => ResourceContents::Text(text),
                results::ResourceContents::Blob(bytes) => {
                    check_blob(&resource.uri, resource.mime_type.as_deref(), &bytes)?;
                    ResourceContents::Blob(bytes)
                }
            };
            ContentItem::Resource(EmbeddedResource {
                uri: resource.uri,
                mime_type: resource.mime_type,
                contents,
            })
        }
    })
}

/// An image or audio piece: a type of `allowed`, and bytes of that type.
fn checked_media(
    kind: &str,
    allowed: &[(&str, &str)],
    media: results::Media,
) -> Result<Media, String> {
    let Some((_, detected_as)) = allowed
        .iter()
        .find(|(declared, _)| media.mime_type.eq_ignore_ascii_case(declared))
    else {
        let names: Vec<&str> = allowed.iter().map(|(name, _)| *name).collect();
        return Err(format!(
            "{kind} of type `{}`; an {kind} is one of {}",
            media.mime_type,
            names.join(", ")
        ));
    };
    match infer::get(&media.data) {
        Some(found) if found.mime_type() == *detected_as => Ok(Media {
            mime_type: media.mime_type.to_ascii_lowercase(),
            data: media.data,
        }),
        found => Err(format!(
            "{kind} says `{}` but its {} bytes are {}",
            media.mime_type,
            media.data.len(),
            describe(found)
        )),
    }
}

/// A blob may be of any type, but where its bytes are recognisably of one
/// type it must not claim another, and an image or audio type is held to the
/// same rule as an image or audio piece.
fn check_blob(uri: &str, declared: Option<&str>, bytes: &[u8]) -> Result<(), String> {
    let found = infer::get(bytes);
    let Some(declared) = declared else {
        return Ok(());
    };
    let media_like = ["image/", "audio/", "video/"]
        .iter()
        .any(|prefix| declared.to_ascii_lowercase().starts_with(prefix));
    let matches = |found: &infer::Type| {
        let detected = found.mime_type();
        detected.eq_ignore_ascii_case(declared)
            || IMAGE_TYPES
                .iter()
                .chain(&AUDIO_TYPES)
                .any(|(name, alias)| declared.eq_ignore_ascii_case(name) && detected == *alias)
    };
    match found {
        Some(found) if matches(&found) => Ok(()),
        None if !media_like => Ok(()),
        found => Err(format!(
            "embedded resource `{uri}` says `{declared}` but its {} bytes are {}",
            bytes.len(),
            describe(found)
        )),
    }
}

fn describe(found: Option<infer::Type>) -> String {
    match found {
        Some(found) => format!("`{}`", found.mime_type()),
        None => "of no recognised type".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    const JPEG: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0";

    fn output(content: Vec<results::Content>) -> results::CallOutput {
        results::CallOutput {
            content,
            structured: None,
        }
    }

    fn image(mime_type: &str, data: &[u8]) -> results::Content {
        results::Content::Image(results::Media {
            mime_type: mime_type.into(),
            data: data.to_vec(),
        })
    }

    fn refusal(content: Vec<results::Content>) -> String {
        checked(output(content), 1 << 20).unwrap_err().to_string()
    }

    #[test]
    fn an_image_whose_bytes_match_its_type_passes() {
        let out = checked(output(vec![image("image/png", PNG)]), 1 << 20).unwrap();
        assert_eq!(
            out.content,
            [ContentItem::Image(Media {
                mime_type: "image/png".into(),
                data: PNG.to_vec()
            })]
        );
    }

    #[test]
    fn an_image_with_another_types_bytes_is_refused() {
        let problem = refusal(vec![image("image/png", JPEG)]);
        assert!(problem.contains("content 1"), "{problem}");
        assert!(problem.contains("`image/jpeg`"), "{problem}");
    }

    #[test]
    fn markup_called_an_image_is_refused() {
        let problem = refusal(vec![image("image/png", b"<svg onload=alert(1)>")]);
        assert!(problem.contains("no recognised type"), "{problem}");
        let problem = refusal(vec![image("image/svg+xml", b"<svg/>")]);
        assert!(problem.contains("an image is one of"), "{problem}");
    }

    #[test]
    fn audio_is_named_by_its_usual_type() {
        let wav = b"RIFF\x24\0\0\0WAVEfmt ";
        let audio = results::Content::Audio(results::Media {
            mime_type: "audio/wav".into(),
            data: wav.to_vec(),
        });
        checked(output(vec![audio]), 1 << 20).unwrap();
    }

    #[test]
    fn a_blob_may_not_claim_an_image_type_it_is_not() {
        let blob = |mime: &str, bytes: &[u8]| {
            results::Content::Resource(results::EmbeddedResource {
                uri: "file:///report".into(),
                mime_type: Some(mime.into()),
                contents: results::ResourceContents::Blob(bytes.to_vec()),
            })
        };
        checked(output(vec![blob("text/csv", b"a,b\n1,2\n")]), 1 << 20).unwrap();
        checked(output(vec![blob("image/png", PNG)]), 1 << 20).unwrap();
        let problem = refusal(vec![blob("text/csv", PNG)]);
        assert!(problem.contains("`image/png`"), "{problem}");
        let problem = refusal(vec![blob("image/gif", b"plain words, no image")]);
        assert!(problem.contains("no recognised type"), "{problem}");
    }

    #[test]
    fn links_are_web_addresses() {
        let link = |uri: &str| {
            results::Content::ResourceLink(results::ResourceLink {
                uri: uri.into(),
                name: "x".into(),
                title: None,
                description: None,
                mime_type: None,
                size: None,
            })
        };
        checked(output(vec![link("https://example.com/a")]), 1 << 20).unwrap();
        let problem = refusal(vec![link("javascript:alert(1)")]);
        assert!(
            problem.contains("not an https:// or http:// URL"),
            "{problem}"
        );
    }

    #[test]
    fn bytes_count_toward_the_output_limit() {
        let big = vec![0u8; 2048];
        let problem = checked(output(vec![image("image/png", &big)]), 1024)
            .unwrap_err()
            .to_string();
        assert!(
            problem.contains("more than the output limit of 1024"),
            "{problem}"
        );
    }

    #[test]
    fn json_content_must_be_json() {
        let problem = refusal(vec![results::Content::Json("{nope".into())]);
        assert!(problem.contains("not JSON"), "{problem}");
    }
}
