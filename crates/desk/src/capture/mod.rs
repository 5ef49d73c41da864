//! Screen capture behind one trait, so other platforms can add backends behind `cfg`. The X11
//! backend uses MIT-SHM when the server offers it and plain `GetImage` otherwise.

mod shm;
mod x11;

pub use x11::X11Capture;

/// One captured screen: 32-bit BGRX pixels (blue first in memory), `stride` bytes per row.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub pixels: &'a [u8],
}

impl Frame<'_> {
    /// (blue, green, red) of one pixel.
    pub fn pixel(&self, x: u32, y: u32) -> (u8, u8, u8) {
        let at = y as usize * self.stride + x as usize * 4;
        (self.pixels[at], self.pixels[at + 1], self.pixels[at + 2])
    }
}

pub trait Capture: Send {
    /// Grabs the whole screen now. The size can differ from the last grab (resolution change).
    fn grab(&mut self) -> anyhow::Result<Frame<'_>>;

    /// Whether grabs use shared memory (no copy through the socket).
    fn uses_shared_memory(&self) -> bool;
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("this is a Wayland session without X11; screen capture needs X11 (log in to an X11/Xorg session, or run under XWayland with DISPLAY set)")]
    WaylandOnly,
    #[error("no display: set DISPLAY or pass --display")]
    NoDisplay,
    #[error("cannot connect to the X display {display}: {reason}")]
    Connect { display: String, reason: String },
    #[error("unsupported screen format: {0}")]
    Unsupported(String),
}

/// Opens the screen of `display` (or `$DISPLAY`).
pub fn open(display: Option<&str>) -> Result<Box<dyn Capture>, CaptureError> {
    let display = display
        .map(str::to_owned)
        .or_else(|| std::env::var("DISPLAY").ok())
        .filter(|d| !d.is_empty());
    let Some(display) = display else {
        if std::env::var_os("WAYLAND_DISPLAY").is_some() {
            return Err(CaptureError::WaylandOnly);
        }
        return Err(CaptureError::NoDisplay);
    };
    Ok(Box::new(X11Capture::connect(&display)?))
}
