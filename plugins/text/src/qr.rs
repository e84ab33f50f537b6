//! `qr_code`: text as a QR code, returned as a PNG image. The image is the
//! result a model cannot produce itself; the text beside it says what it is.

use mcpist_plugin::{Call, CallOutput, ToolError};
use qrcodegen::{QrCode, QrCodeEcc};
use schemars::JsonSchema;
use serde::Deserialize;

/// Light modules around the code, as the QR specification requires.
const QUIET_ZONE: u32 = 4;

#[derive(Deserialize, JsonSchema, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCorrection {
    /// Recovers 7% of the code.
    Low,
    /// Recovers 15%.
    #[default]
    Medium,
    /// Recovers 25%.
    Quartile,
    /// Recovers 30%.
    High,
}

#[derive(Deserialize, JsonSchema)]
pub struct QrArgs {
    /// The text to encode: a URL, contact details, any UTF-8 text.
    #[schemars(length(min = 1, max = 2048))]
    text: String,
    /// Pixels per module (the code's smallest square).
    #[serde(default = "default_scale")]
    #[schemars(range(min = 1, max = 16))]
    scale: u32,
    /// How much damage the code survives; higher levels hold less text.
    #[serde(default)]
    error_correction: ErrorCorrection,
}

fn default_scale() -> u32 {
    8
}

pub fn qr_code(args: QrArgs, _: &mut Call) -> Result<CallOutput, ToolError> {
    let level = match args.error_correction {
        ErrorCorrection::Low => QrCodeEcc::Low,
        ErrorCorrection::Medium => QrCodeEcc::Medium,
        ErrorCorrection::Quartile => QrCodeEcc::Quartile,
        ErrorCorrection::High => QrCodeEcc::High,
    };
    let code = QrCode::encode_text(&args.text, level).map_err(|_| {
        ToolError::InvalidArguments(format!(
            "{} bytes do not fit in a QR code at this error correction level; shorten the text or choose a lower level",
            args.text.len()
        ))
    })?;
    let (png, pixels) = png_of(&code, args.scale)?;
    let modules = code.size();
    Ok(mcpist_plugin::image(
        "image/png",
        png,
        &format!(
            "QR code (version {}, {modules}×{modules} modules) of {} bytes of text, as a {pixels}×{pixels} PNG",
            code.version().value(),
            args.text.len()
        ),
    ))
}

/// The code as a 1-bit greyscale PNG (dark modules black), with its quiet
/// zone; and its width in pixels.
fn png_of(code: &QrCode, scale: u32) -> Result<(Vec<u8>, u32), ToolError> {
    let modules = u32::try_from(code.size()).expect("a QR code has a positive size");
    let pixels = (modules + 2 * QUIET_ZONE) * scale;
    let row_bytes = pixels.div_ceil(8) as usize;
    let mut image = vec![0u8; row_bytes * pixels as usize];
    for y in 0..pixels {
        let row = &mut image[y as usize * row_bytes..][..row_bytes];
        for x in 0..pixels {
            let module = |p: u32| i32::try_from(p / scale).unwrap() - QUIET_ZONE as i32;
            if !code.get_module(module(x), module(y)) {
                // Light: a set bit (white in greyscale).
                row[x as usize / 8] |= 0x80 >> (x % 8);
            }
        }
    }
    let failed = |e: png::EncodingError| ToolError::Failed(format!("encoding the PNG: {e}"));
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, pixels, pixels);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let mut writer = encoder.write_header().map_err(failed)?;
    writer.write_image_data(&image).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok((png, pixels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpist_plugin::{CallContext, Content};

    /// `qr_code` sends nothing.
    struct Offline;

    impl mcpist_plugin::web::Transport for Offline {
        fn send(
            &mut self,
            _: mcpist_plugin::web::Request,
        ) -> Result<mcpist_plugin::web::Response, ToolError> {
            unreachable!("qr_code sends no request")
        }
    }

    fn run(args: serde_json::Value) -> Result<CallOutput, ToolError> {
        let mut http = Offline;
        let context = CallContext { account: None };
        let mut call = Call {
            context: &context,
            http: &mut http,
        };
        qr_code(serde_json::from_value(args).unwrap(), &mut call)
    }

    #[test]
    fn the_png_holds_the_codes_modules_pixel_for_pixel() {
        let text = "https://example.com/mcpist";
        let output = run(serde_json::json!({"text": text, "scale": 3})).unwrap();
        let Content::Image(media) = &output.content[0] else {
            panic!("expected an image first");
        };
        assert_eq!(media.mime_type, "image/png");
        let decoder = png::Decoder::new(std::io::Cursor::new(media.data.as_slice()));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        let code = QrCode::encode_text(text, QrCodeEcc::Medium).unwrap();
        let side = (code.size() as u32 + 2 * QUIET_ZONE) * 3;
        assert_eq!((frame.width, frame.height), (side, side));
        assert_eq!(frame.bit_depth, png::BitDepth::One);
        for y in 0..side {
            for x in 0..side {
                let light = pixels[(y * frame.line_size as u32) as usize + x as usize / 8]
                    & (0x80 >> (x % 8))
                    != 0;
                let (mx, my) = ((x / 3) as i32 - 4, (y / 3) as i32 - 4);
                assert_eq!(light, !code.get_module(mx, my), "pixel {x},{y}");
            }
        }
        let Content::Text(alt) = &output.content[1] else {
            panic!("expected the text second");
        };
        assert!(alt.contains("of 26 bytes of text"), "{alt}");
    }

    #[test]
    fn text_too_long_for_the_level_says_what_to_do() {
        let text = "x".repeat(2048);
        let Err(ToolError::InvalidArguments(message)) =
            run(serde_json::json!({"text": text, "error_correction": "high"}))
        else {
            panic!("expected invalid arguments");
        };
        assert!(message.contains("choose a lower level"), "{message}");
    }
}
