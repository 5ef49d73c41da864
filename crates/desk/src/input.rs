//! Applying a technician's mouse and keyboard to the screen: XTest fake input on X11.
//! Coordinates outside the screen are clamped; unknown keys are ignored.

use std::collections::HashMap;

use anyhow::Context;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _, Window};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use crate::keymap;

/// Spec button numbers: 1 left, 2 right, 3 middle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    Left,
    Right,
    Middle,
}

impl Button {
    pub fn from_wire(value: u8) -> Option<Self> {
        match value {
            1 => Some(Button::Left),
            2 => Some(Button::Right),
            3 => Some(Button::Middle),
            _ => None,
        }
    }

    /// X numbers buttons left 1, middle 2, right 3.
    fn x_button(self) -> u8 {
        match self {
            Button::Left => 1,
            Button::Middle => 2,
            Button::Right => 3,
        }
    }
}

pub trait InputSink: Send {
    /// Moves the pointer to (x, y); then presses or releases `button` if given.
    fn mouse(&mut self, x: i32, y: i32, button: Option<(Button, bool)>) -> anyhow::Result<()>;
    /// Presses or releases the key with this Windows virtual-key code.
    fn key(&mut self, vk: u16, down: bool) -> anyhow::Result<()>;
}

pub struct XTestInput {
    conn: RustConnection,
    root: Window,
    keycodes: HashMap<u32, u8>,
}

impl XTestInput {
    pub fn connect(display: &str) -> anyhow::Result<Self> {
        let (conn, screen_num) = x11rb::connect(Some(display))
            .with_context(|| format!("cannot connect to {display}"))?;
        conn.xtest_get_version(2, 2)?
            .reply()
            .context("the X server does not offer XTest, which remote control needs")?;
        let root = conn.setup().roots[screen_num].root;
        let keycodes = keycode_table(&conn)?;
        Ok(Self {
            conn,
            root,
            keycodes,
        })
    }

    fn size(&self) -> anyhow::Result<(i32, i32)> {
        let geometry = self.conn.get_geometry(self.root)?.reply()?;
        Ok((i32::from(geometry.width), i32::from(geometry.height)))
    }

    fn fake(&self, kind: u8, detail: u8, x: i16, y: i16) -> anyhow::Result<()> {
        self.conn
            .xtest_fake_input(kind, detail, x11rb::CURRENT_TIME, self.root, x, y, 0)?;
        Ok(())
    }
}

/// keysym → the first keycode that produces it.
fn keycode_table(conn: &RustConnection) -> anyhow::Result<HashMap<u32, u8>> {
    let setup = conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let mapping = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
    let per = usize::from(mapping.keysyms_per_keycode.max(1));
    let mut table = HashMap::new();
    for (index, keysyms) in mapping.keysyms.chunks(per).enumerate() {
        let keycode = min + index as u8;
        for &keysym in keysyms.iter().take(2).filter(|&&k| k != 0) {
            table.entry(keysym).or_insert(keycode);
        }
    }
    Ok(table)
}

impl InputSink for XTestInput {
    fn mouse(&mut self, x: i32, y: i32, button: Option<(Button, bool)>) -> anyhow::Result<()> {
        let (width, height) = self.size()?;
        let x = x.clamp(0, (width - 1).max(0)) as i16;
        let y = y.clamp(0, (height - 1).max(0)) as i16;
        self.fake(xproto::MOTION_NOTIFY_EVENT, 0, x, y)?;
        if let Some((button, down)) = button {
            let kind = if down {
                xproto::BUTTON_PRESS_EVENT
            } else {
                xproto::BUTTON_RELEASE_EVENT
            };
            self.fake(kind, button.x_button(), 0, 0)?;
        }
        self.conn.flush()?;
        Ok(())
    }

    fn key(&mut self, vk: u16, down: bool) -> anyhow::Result<()> {
        let Some(keycode) =
            keymap::vk_to_keysym(vk).and_then(|keysym| self.keycodes.get(&keysym).copied())
        else {
            tracing::debug!(vk, "no key for this virtual-key code; ignored");
            return Ok(());
        };
        let kind = if down {
            xproto::KEY_PRESS_EVENT
        } else {
            xproto::KEY_RELEASE_EVENT
        };
        self.fake(kind, keycode, 0, 0)?;
        self.conn.flush()?;
        Ok(())
    }
}
