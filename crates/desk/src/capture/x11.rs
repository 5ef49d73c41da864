//! X11 capture of the root window with x11rb: MIT-SHM (`ShmGetImage` into a segment the server
//! created) when the server offers version 1.2, plain `GetImage` otherwise.

use anyhow::Context;
use x11rb::connection::Connection;
use x11rb::protocol::shm::ConnectionExt as _;
use x11rb::protocol::xproto::{ConnectionExt as _, ImageFormat, ImageOrder, Window};
use x11rb::rust_connection::RustConnection;

use super::shm::ShmSegment;
use super::{Capture, CaptureError, Frame};

pub struct X11Capture {
    conn: RustConnection,
    root: Window,
    width: u16,
    height: u16,
    shm_available: bool,
    shm: Option<ShmSegment>,
    /// Pixels of the last `GetImage` when shared memory is not in use.
    copied: Vec<u8>,
}

impl X11Capture {
    pub fn connect(display: &str) -> Result<Self, CaptureError> {
        let (conn, screen_num) =
            x11rb::connect(Some(display)).map_err(|err| CaptureError::Connect {
                display: display.to_owned(),
                reason: err.to_string(),
            })?;
        let setup = conn.setup();
        let screen = &setup.roots[screen_num];
        let depth = screen.root_depth;
        let bits = setup
            .pixmap_formats
            .iter()
            .find(|format| format.depth == depth)
            .map(|format| format.bits_per_pixel);
        if !(depth == 24 || depth == 32)
            || bits != Some(32)
            || setup.image_byte_order != ImageOrder::LSB_FIRST
        {
            return Err(CaptureError::Unsupported(format!(
                "depth {depth}, {bits:?} bits per pixel; a 24-bit true-colour screen is needed"
            )));
        }
        let root = screen.root;
        let (width, height) = (screen.width_in_pixels, screen.height_in_pixels);
        let shm_available = conn
            .shm_query_version()
            .ok()
            .and_then(|cookie| cookie.reply().ok())
            .is_some_and(|version| (version.major_version, version.minor_version) >= (1, 2));
        Ok(Self {
            conn,
            root,
            width,
            height,
            shm_available,
            shm: None,
            copied: Vec::new(),
        })
    }

    /// Reads the root window's size; drops the segment when it changed.
    fn refresh_size(&mut self) -> anyhow::Result<()> {
        let geometry = self.conn.get_geometry(self.root)?.reply()?;
        if (geometry.width, geometry.height) != (self.width, self.height) {
            tracing::info!(
                width = geometry.width,
                height = geometry.height,
                "screen size changed"
            );
            self.width = geometry.width;
            self.height = geometry.height;
            if let Some(segment) = self.shm.take() {
                segment.detach(&self.conn);
            }
        }
        Ok(())
    }

    fn frame_bytes(&self) -> usize {
        usize::from(self.width) * usize::from(self.height) * 4
    }
}

impl Capture for X11Capture {
    fn grab(&mut self) -> anyhow::Result<Frame<'_>> {
        self.refresh_size()?;
        let size = self.frame_bytes();
        if self.shm_available && self.shm.is_none() {
            match ShmSegment::create(&self.conn, size) {
                Ok(segment) => self.shm = Some(segment),
                Err(err) => {
                    tracing::warn!(error = %err, "MIT-SHM unavailable; capturing through the socket");
                    self.shm_available = false;
                }
            }
        }
        let (width, height) = (self.width, self.height);
        let pixels: &[u8] = match &self.shm {
            Some(segment) => {
                self.conn
                    .shm_get_image(
                        self.root,
                        0,
                        0,
                        width,
                        height,
                        !0,
                        ImageFormat::Z_PIXMAP.into(),
                        segment.id,
                        0,
                    )?
                    .reply()
                    .context("ShmGetImage failed")?;
                &segment.bytes()[..size.min(segment.size)]
            }
            None => {
                let reply = self
                    .conn
                    .get_image(ImageFormat::Z_PIXMAP, self.root, 0, 0, width, height, !0)?
                    .reply()
                    .context("GetImage failed")?;
                self.copied = reply.data;
                &self.copied
            }
        };
        Ok(Frame {
            width: u32::from(width),
            height: u32::from(height),
            stride: usize::from(width) * 4,
            pixels,
        })
    }

    fn uses_shared_memory(&self) -> bool {
        self.shm.is_some()
    }
}

impl Drop for X11Capture {
    fn drop(&mut self) {
        if let Some(segment) = self.shm.take() {
            segment.detach(&self.conn);
            let _ = self.conn.flush();
        }
    }
}
