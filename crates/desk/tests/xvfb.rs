//! Test helpers: an Xvfb server on a display it picks itself, and an X client that paints and
//! watches, to check what capture and input do.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ChangeGCAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, Gcontext, InputFocus,
    Rectangle, Window, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    pub fn start(width: u32, height: u32) -> Self {
        Self::start_with(width, height, &[])
    }

    pub fn start_with(width: u32, height: u32, extra: &[&str]) -> Self {
        // -displayfd: Xvfb picks a free display and writes its number once it accepts clients.
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                &format!("{width}x{height}x24"),
                "-nolisten",
                "tcp",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (scripts/test installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let number: u32 = line.trim().parse().expect("Xvfb printed its display");
        Self {
            child,
            display: format!(":{number}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Painter {
    pub conn: RustConnection,
    root: Window,
    gc: Gcontext,
    window: std::cell::Cell<Option<Window>>,
}

impl Painter {
    pub fn connect(display: &str) -> Self {
        let (conn, screen) = x11rb::connect(Some(display)).unwrap();
        let root = conn.setup().roots[screen].root;
        let gc = conn.generate_id().unwrap();
        conn.create_gc(
            gc,
            root,
            &CreateGCAux::new()
                .subwindow_mode(x11rb::protocol::xproto::SubwindowMode::INCLUDE_INFERIORS),
        )
        .unwrap();
        Self {
            conn,
            root,
            gc,
            window: std::cell::Cell::new(None),
        }
    }

    /// Fills a rectangle of the root window with 0x00RRGGBB, and waits until it is drawn.
    pub fn fill(&self, x: i16, y: i16, width: u16, height: u16, rgb: u32) {
        self.conn
            .change_gc(self.gc, &ChangeGCAux::new().foreground(rgb))
            .unwrap();
        self.conn
            .poly_fill_rectangle(
                self.root,
                self.gc,
                &[Rectangle {
                    x,
                    y,
                    width,
                    height,
                }],
            )
            .unwrap();
        self.conn.get_input_focus().unwrap().reply().unwrap(); // a round trip: drawn
    }

    /// A window over the whole screen, focused, selecting `events`.
    pub fn window(&self, events: EventMask) -> Window {
        let screen = &self.conn.setup().roots[0];
        let window = self.conn.generate_id().unwrap();
        self.conn
            .create_window(
                screen.root_depth,
                window,
                self.root,
                0,
                0,
                screen.width_in_pixels,
                screen.height_in_pixels,
                0,
                WindowClass::INPUT_OUTPUT,
                0,
                &CreateWindowAux::new()
                    .event_mask(events | EventMask::EXPOSURE)
                    .background_pixel(0),
            )
            .unwrap();
        self.conn.map_window(window).unwrap();
        self.conn.flush().unwrap();
        // Wait until it is viewable, then take the focus.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(Event::Expose(_))) = self.conn.poll_for_event() {
                break;
            }
            assert!(Instant::now() < deadline, "window never exposed");
            std::thread::sleep(Duration::from_millis(5));
        }
        self.conn
            .set_input_focus(InputFocus::POINTER_ROOT, window, x11rb::CURRENT_TIME)
            .unwrap();
        self.conn.get_input_focus().unwrap().reply().unwrap();
        self.window.set(Some(window));
        window
    }

    /// The pointer's position once it is `expected` (XTest input arrives on another connection,
    /// so it may land a moment later), or where it is after 2 s.
    pub fn pointer_at(&self, expected: (i16, i16)) -> (i16, i16) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let position = self.pointer();
            if position == expected || Instant::now() > deadline {
                return position;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn pointer(&self) -> (i16, i16) {
        let reply = self.conn.query_pointer(self.root).unwrap().reply().unwrap();
        (reply.root_x, reply.root_y)
    }

    /// The next `count` input events (5 s at most), skipping exposures.
    pub fn events(&self, count: usize) -> Vec<Event> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut events = Vec::new();
        while events.len() < count {
            match self.conn.poll_for_event().unwrap() {
                Some(Event::Expose(_) | Event::MappingNotify(_)) => {}
                Some(event) => events.push(event),
                None => {
                    assert!(
                        Instant::now() < deadline,
                        "only {} of {count} events: {events:?}",
                        events.len()
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        events
    }

    /// Key presses until they spell `expected` (or 5 s pass), as text.
    pub fn typed_until(&self, expected: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut text = String::new();
        while text.len() < expected.len() && Instant::now() < deadline {
            text.push_str(&self.typed(1));
        }
        text
    }

    /// The text that `presses` key presses typed (Shift applied, modifiers themselves skipped).
    pub fn typed(&self, presses: usize) -> String {
        let setup = self.conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let mapping = self
            .conn
            .get_keyboard_mapping(min, max - min + 1)
            .unwrap()
            .reply()
            .unwrap();
        let per = usize::from(mapping.keysyms_per_keycode);
        let mut text = String::new();
        for event in self.events(presses) {
            let Event::KeyPress(press) = event else {
                panic!("{event:?}")
            };
            let row = usize::from(press.detail - min) * per;
            let shifted = u16::from(press.state) & 1 != 0;
            let keysym = mapping.keysyms[row + usize::from(shifted)];
            if keysym < 0x100 {
                text.push(char::from(keysym as u8));
            }
        }
        text
    }
}
