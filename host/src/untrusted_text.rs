//! Text from outside (client-supplied names, a module's log lines and
//! output) made safe to print on a terminal or in a line-oriented log:
//! control characters (newlines that would forge a log line, escape
//! sequences that would drive the owner's terminal) and bidirectional
//! controls (which reverse what the owner reads) are spelled out as
//! `\u{..}`. Everything else, including non-ASCII text, is kept.

use std::borrow::Cow;

/// Bidirectional formatting characters: shown, never obeyed.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn needs_escape(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// `text` with every control and bidi character spelled out.
pub fn escape(text: &str) -> Cow<'_, str> {
    spell_out(text, |c, out| {
        out.push_str(&format!("\\u{{{:x}}}", c as u32))
    })
}

/// A JSON text with every control and bidi character left in it (serde
/// escapes only those below U+0020) written as a JSON `\uXXXX` escape: the
/// same JSON value, safe on a terminal.
pub fn escape_json(json: &str) -> Cow<'_, str> {
    spell_out(json, |c, out| out.push_str(&format!("\\u{:04x}", c as u32)))
}

fn spell_out(text: &str, spell: impl Fn(char, &mut String)) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if needs_escape(c) {
            spell(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::{escape, escape_json};

    #[test]
    fn json_keeps_its_value() {
        let raw = serde_json::json!({"module": "a\u{202e}b\u{9b}c\u{7f}"}).to_string();
        let safe = escape_json(&raw);
        assert!(safe.is_ascii(), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["module"], "a\u{202e}b\u{9b}c\u{7f}");
    }

    #[test]
    fn controls_and_bidi_are_spelled_out_and_the_rest_kept() {
        assert_eq!(escape("plain ünïcode 名前"), "plain ünïcode 名前");
        assert_eq!(
            escape("a\nFORGED line\r\x1b[2J\u{202e}txt.exe\u{7f}"),
            "a\\u{a}FORGED line\\u{d}\\u{1b}[2J\\u{202e}txt.exe\\u{7f}"
        );
        assert_eq!(escape("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
    }
}
