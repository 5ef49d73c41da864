//! Synthetic desktops for the desk bench: a text-heavy 1080p screen drawn in BGRX, and the four
//! workloads on it (static, typing, scrolling, full motion), painted into an X server (Xvfb)
//! with plain core requests; plus the changed-tile comparison used to estimate what sending only
//! changed regions would cost.

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateGCAux, Gcontext, ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

pub const GLYPH_W: u32 = 8;
pub const GLYPH_H: u32 = 16;
const BACKGROUND: [u8; 4] = [0xfa, 0xf8, 0xf6, 0];
const INK: [u8; 4] = [0x30, 0x2c, 0x28, 0];
const SIDEBAR: [u8; 4] = [0x5a, 0x40, 0x2e, 0];
const TITLE: [u8; 4] = [0xc8, 0x8a, 0x3c, 0];
const SIDEBAR_W: u32 = 240;
const TITLE_H: u32 = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scene {
    Static,
    Typing,
    Scrolling,
    FullMotion,
}

impl Scene {
    pub const ALL: [Scene; 4] = [
        Scene::Static,
        Scene::Typing,
        Scene::Scrolling,
        Scene::FullMotion,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scene::Static => "static",
            Scene::Typing => "typing",
            Scene::Scrolling => "scrolling",
            Scene::FullMotion => "full motion",
        }
    }
}

/// A small deterministic generator (xorshift), so every run paints the same screens.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A BGRX picture, rows packed.
#[derive(Clone)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

impl Picture {
    pub fn filled(width: u32, height: u32, color: [u8; 4]) -> Self {
        let pixels = color
            .iter()
            .copied()
            .cycle()
            .take((width * height * 4) as usize)
            .collect();
        Self {
            width,
            height,
            pixels,
        }
    }

    pub fn fill(&mut self, x: u32, y: u32, w: u32, h: u32, color: [u8; 4]) {
        for row in y..(y + h).min(self.height) {
            for col in x..(x + w).min(self.width) {
                let at = ((row * self.width + col) * 4) as usize;
                self.pixels[at..at + 4].copy_from_slice(&color);
            }
        }
    }

    /// Draws a glyph-like pattern (strokes of a made-up font) with its top left at (x, y).
    pub fn glyph(&mut self, x: u32, y: u32, code: u64) {
        let mut rng = Rng::new(code.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        // A few vertical and horizontal strokes inside the cell, like letters.
        for _ in 0..3 {
            if rng.below(2) == 0 {
                let col = 1 + rng.below(u64::from(GLYPH_W) - 2) as u32;
                let top = 3 + rng.below(4) as u32;
                self.fill(x + col, y + top, 1, 8, INK);
            } else {
                let row = 3 + rng.below(10) as u32;
                let left = 1 + rng.below(3) as u32;
                self.fill(x + left, y + row, 4, 1, INK);
            }
        }
    }

    /// One line of text: words of 2–9 glyphs separated by spaces, from `x` to `right`.
    pub fn text_line(&mut self, x: u32, y: u32, right: u32, rng: &mut Rng) {
        let mut at = x;
        while at + GLYPH_W * 10 < right {
            let word = 2 + rng.below(8) as u32;
            for _ in 0..word {
                self.glyph(at, y, rng.next_u64());
                at += GLYPH_W;
            }
            at += GLYPH_W;
        }
    }

    /// A text-heavy desktop: a title bar, a sidebar and a full page of text.
    pub fn desktop(width: u32, height: u32, seed: u64) -> Self {
        let mut picture = Self::filled(width, height, BACKGROUND);
        picture.fill(0, 0, width, TITLE_H, TITLE);
        picture.fill(0, TITLE_H, SIDEBAR_W.min(width), height, SIDEBAR);
        let mut rng = Rng::new(seed);
        let mut y = TITLE_H + 8;
        while y + GLYPH_H < height {
            if rng.below(9) != 0 {
                picture.text_line(SIDEBAR_W + 16, y, width - 16, &mut rng);
            }
            y += GLYPH_H + 2;
        }
        picture
    }

    /// A frame of smooth full-screen motion (moving gradients and bands, like video).
    pub fn motion(width: u32, height: u32, t: u32) -> Self {
        let mut pixels = vec![0u8; (width * height * 4) as usize];
        let shift = t.wrapping_mul(6);
        for y in 0..height {
            for x in 0..width {
                let at = ((y * width + x) * 4) as usize;
                let u = x.wrapping_add(shift);
                let v = y.wrapping_add(shift / 2);
                let band = ((u / 3 + v / 5) % 256) as u8;
                pixels[at] = (u % 256) as u8;
                pixels[at + 1] = band;
                pixels[at + 2] = ((v * 2 + u / 7) % 256) as u8;
            }
        }
        Self {
            width,
            height,
            pixels,
        }
    }

    /// The rectangle (x, y, w, h) as its own packed picture.
    pub fn crop(&self, x: u32, y: u32, w: u32, h: u32) -> Picture {
        let mut pixels = Vec::with_capacity((w * h * 4) as usize);
        for row in y..y + h {
            let start = ((row * self.width + x) * 4) as usize;
            pixels.extend_from_slice(&self.pixels[start..start + (w * 4) as usize]);
        }
        Picture {
            width: w,
            height: h,
            pixels,
        }
    }
}

/// The tiles (`tile`×`tile`, cut at the edges) where two BGRX screens of the same size differ,
/// ignoring the padding byte. Returns (x, y, w, h) of each.
pub fn changed_tiles(
    before: &[u8],
    after: &[u8],
    width: u32,
    height: u32,
    tile: u32,
) -> Vec<(u32, u32, u32, u32)> {
    let mut tiles = Vec::new();
    let row_bytes = (width * 4) as usize;
    for ty in (0..height).step_by(tile as usize) {
        let th = tile.min(height - ty);
        for tx in (0..width).step_by(tile as usize) {
            let tw = tile.min(width - tx);
            let differs = (ty..ty + th).any(|row| {
                let start = row as usize * row_bytes + tx as usize * 4;
                let end = start + tw as usize * 4;
                before[start..end]
                    .chunks_exact(4)
                    .zip(after[start..end].chunks_exact(4))
                    .any(|(a, b)| a[..3] != b[..3])
            });
            if differs {
                tiles.push((tx, ty, tw, th));
            }
        }
    }
    tiles
}

/// Paints pictures into an X server's root window.
pub struct Painter {
    conn: RustConnection,
    root: Window,
    gc: Gcontext,
    depth: u8,
    pub width: u32,
    pub height: u32,
}

impl Painter {
    pub fn connect(display: &str) -> anyhow::Result<Self> {
        let (conn, screen) = x11rb::connect(Some(display))?;
        let setup_screen = &conn.setup().roots[screen];
        let (root, depth) = (setup_screen.root, setup_screen.root_depth);
        let (width, height) = (
            u32::from(setup_screen.width_in_pixels),
            u32::from(setup_screen.height_in_pixels),
        );
        let gc = conn.generate_id()?;
        conn.create_gc(gc, root, &CreateGCAux::new().graphics_exposures(0))?;
        Ok(Self {
            conn,
            root,
            gc,
            depth,
            width,
            height,
        })
    }

    /// Puts `picture` with its top left at (x, y), in strips that fit a core request.
    pub fn put(&self, picture: &Picture, x: u32, y: u32) -> anyhow::Result<()> {
        let row_bytes = (picture.width * 4) as usize;
        let rows_per_strip = (200_000 / row_bytes).max(1) as u32;
        let mut row = 0;
        while row < picture.height {
            let rows = rows_per_strip.min(picture.height - row);
            let start = row as usize * row_bytes;
            self.conn.put_image(
                ImageFormat::Z_PIXMAP,
                self.root,
                self.gc,
                picture.width as u16,
                rows as u16,
                (x) as i16,
                (y + row) as i16,
                0,
                self.depth,
                &picture.pixels[start..start + rows as usize * row_bytes],
            )?;
            row += rows;
        }
        Ok(())
    }

    /// Moves the rectangle (x, from_y, w, h) to (x, to_y) inside the X server.
    pub fn copy_up(&self, x: u32, from_y: u32, to_y: u32, w: u32, h: u32) -> anyhow::Result<()> {
        self.conn.copy_area(
            self.root,
            self.root,
            self.gc,
            x as i16,
            from_y as i16,
            x as i16,
            to_y as i16,
            w as u16,
            h as u16,
        )?;
        Ok(())
    }

    /// Waits until the X server has done everything sent so far.
    pub fn sync(&self) -> anyhow::Result<()> {
        self.conn.get_input_focus()?.reply()?;
        Ok(())
    }
}

/// A workload in motion: what to paint for each frame.
pub struct Workload {
    scene: Scene,
    rng: Rng,
    motion: Vec<Picture>,
    cursor: (u32, u32),
}

impl Workload {
    /// Paints the scene's first screen.
    pub fn start(scene: Scene, painter: &Painter) -> anyhow::Result<Self> {
        let (w, h) = (painter.width, painter.height);
        painter.put(&Picture::desktop(w, h, 7), 0, 0)?;
        let motion = if scene == Scene::FullMotion {
            (0..8).map(|t| Picture::motion(w, h, t)).collect()
        } else {
            Vec::new()
        };
        painter.sync()?;
        Ok(Self {
            scene,
            rng: Rng::new(42),
            motion,
            cursor: (SIDEBAR_W + 16, h / 2),
        })
    }

    /// Paints frame `i`'s change and waits for the X server to have it.
    pub fn step(&mut self, painter: &Painter, i: u64) -> anyhow::Result<()> {
        let (w, h) = (painter.width, painter.height);
        match self.scene {
            Scene::Static => return Ok(()),
            Scene::Typing => {
                // One character typed per frame; a new line at the right edge.
                let mut cell = Picture::filled(GLYPH_W, GLYPH_H, BACKGROUND);
                if self.rng.below(6) != 0 {
                    cell.glyph(0, 0, self.rng.next_u64());
                }
                painter.put(&cell, self.cursor.0, self.cursor.1)?;
                self.cursor.0 += GLYPH_W;
                if self.cursor.0 + GLYPH_W * 2 > w {
                    self.cursor = (SIDEBAR_W + 16, self.cursor.1 + GLYPH_H + 2);
                    if self.cursor.1 + GLYPH_H > h {
                        self.cursor.1 = TITLE_H + 8;
                    }
                }
            }
            Scene::Scrolling => {
                // The page moves up one line; a new line appears at the bottom.
                let line = GLYPH_H + 2;
                let top = TITLE_H;
                let x = SIDEBAR_W;
                painter.copy_up(x, top + line, top, w - x, h - top - line)?;
                let mut fresh = Picture::filled(w - x, line, BACKGROUND);
                fresh.text_line(16, 1, w - x - 16, &mut self.rng);
                painter.put(&fresh, x, h - line)?;
            }
            Scene::FullMotion => {
                painter.put(&self.motion[i as usize % self.motion.len()], 0, 0)?;
            }
        }
        painter.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desktops_are_deterministic_and_text_heavy() {
        let a = Picture::desktop(640, 200, 7);
        let b = Picture::desktop(640, 200, 7);
        assert!(a.pixels == b.pixels);
        assert_eq!(a.pixels.len(), 640 * 200 * 4);
        let ink = a.pixels.chunks_exact(4).filter(|p| *p == INK).count();
        assert!(ink > 100, "text drawn: {ink} ink pixels");
    }

    #[test]
    fn changed_tiles_finds_only_what_changed() {
        let before = Picture::filled(100, 70, BACKGROUND);
        let mut after = before.clone();
        assert!(changed_tiles(&before.pixels, &after.pixels, 100, 70, 32).is_empty());
        after.fill(40, 65, 2, 2, INK);
        assert_eq!(
            changed_tiles(&before.pixels, &after.pixels, 100, 70, 32),
            vec![(32, 64, 32, 6)]
        );
        // The padding byte alone is no change.
        let mut padded = before.clone();
        padded.pixels[3] = 9;
        assert!(changed_tiles(&before.pixels, &padded.pixels, 100, 70, 32).is_empty());
    }

    #[test]
    fn crop_copies_the_rectangle() {
        let mut picture = Picture::filled(10, 10, BACKGROUND);
        picture.fill(2, 3, 1, 1, INK);
        let crop = picture.crop(2, 3, 4, 2);
        assert_eq!((crop.width, crop.height), (4, 2));
        assert_eq!(&crop.pixels[..4], &INK);
        assert_eq!(&crop.pixels[4..8], &BACKGROUND);
    }

    #[test]
    fn motion_frames_differ() {
        let a = Picture::motion(64, 32, 0);
        let b = Picture::motion(64, 32, 1);
        assert!(a.pixels != b.pixels);
    }
}
