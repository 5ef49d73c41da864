//! JPEG: captured BGRX frames in, baseline JPEG out (4:2:0 at the quality given); and
//! decoding, for the viewer and tests.

use anyhow::{bail, Context};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use crate::capture::Frame;

pub struct JpegEncoder {
    quality: u8,
}

impl JpegEncoder {
    /// `quality` 1–100.
    pub fn new(quality: u8) -> Self {
        Self {
            quality: quality.clamp(1, 100),
        }
    }

    pub fn encode(&self, frame: &Frame<'_>) -> anyhow::Result<Vec<u8>> {
        let (Ok(width), Ok(height)) = (u16::try_from(frame.width), u16::try_from(frame.height))
        else {
            bail!(
                "a {}x{} screen is too large for JPEG",
                frame.width,
                frame.height
            );
        };
        if frame.stride != frame.width as usize * 4 {
            bail!("rows with padding are not supported");
        }
        let size = frame.stride * frame.height as usize;
        let mut jpeg = Vec::with_capacity(size / 16);
        let mut encoder = Encoder::new(&mut jpeg, self.quality);
        encoder.set_sampling_factor(SamplingFactor::R_4_2_0);
        // BGRX is BGRA whose alpha the encoder ignores.
        encoder.encode(&frame.pixels[..size], width, height, ColorType::Bgra)?;
        Ok(jpeg)
    }
}

/// A decoded picture: RGB, 3 bytes per pixel, rows packed.
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Rgb {
    pub fn pixel(&self, x: u32, y: u32) -> (u8, u8, u8) {
        let at = (y as usize * self.width as usize + x as usize) * 3;
        (self.pixels[at], self.pixels[at + 1], self.pixels[at + 2])
    }
}

pub fn decode(jpeg: &[u8]) -> anyhow::Result<Rgb> {
    let mut decoder = jpeg_decoder::Decoder::new(jpeg);
    let pixels = decoder.decode().context("not a JPEG")?;
    let info = decoder.info().context("JPEG without a header")?;
    if info.pixel_format != jpeg_decoder::PixelFormat::RGB24 {
        bail!("expected a colour JPEG, got {:?}", info.pixel_format);
    }
    Ok(Rgb {
        width: u32::from(info.width),
        height: u32::from(info.height),
        pixels,
    })
}
