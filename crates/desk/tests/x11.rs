//! Capture, encode and input against a real X server (Xvfb).

mod xvfb;

use std::time::Duration;

use skyshift_desk::capture;
use skyshift_desk::encode::{decode, JpegEncoder};
use skyshift_desk::input::{Button, InputSink, XTestInput};
use skyshift_desk::keymap;
use x11rb::protocol::xproto::EventMask;
use x11rb::protocol::Event;
use xvfb::{Painter, Xvfb};

#[test]
fn captures_what_the_screen_shows_and_encodes_it() {
    let xvfb = Xvfb::start(320, 200);
    let painter = Painter::connect(&xvfb.display);
    painter.fill(0, 0, 320, 200, 0x00_20_40_c0); // red 0x20, green 0x40, blue 0xc0
    painter.fill(0, 0, 160, 100, 0x00_f0_f0_10); // top-left quarter yellow-ish

    let mut capture = capture::open(Some(&xvfb.display)).expect("capture");
    let frame = capture.grab().unwrap();
    assert_eq!((frame.width, frame.height), (320, 200));
    assert!(capture.uses_shared_memory(), "Xvfb offers MIT-SHM 1.2");
    let frame = capture.grab().unwrap();
    assert_eq!(frame.pixel(300, 150), (0xc0, 0x40, 0x20), "BGR order");
    assert_eq!(frame.pixel(10, 10), (0x10, 0xf0, 0xf0));

    let jpeg = JpegEncoder::new(60).encode(&frame).unwrap();
    assert!(jpeg.starts_with(&[0xff, 0xd8]), "a JPEG");
    assert!(
        jpeg.len() < 320 * 200 * 4 / 10,
        "compressed: {} bytes",
        jpeg.len()
    );
    let picture = decode(&jpeg).unwrap();
    assert_eq!((picture.width, picture.height), (320, 200));
    let close = |(r, g, b): (u8, u8, u8), (er, eg, eb): (u8, u8, u8)| {
        r.abs_diff(er) <= 12 && g.abs_diff(eg) <= 12 && b.abs_diff(eb) <= 12
    };
    assert!(
        close(picture.pixel(300, 150), (0x20, 0x40, 0xc0)),
        "{:?}",
        picture.pixel(300, 150)
    );
    assert!(
        close(picture.pixel(40, 40), (0xf0, 0xf0, 0x10)),
        "{:?}",
        picture.pixel(40, 40)
    );
}

#[test]
fn capture_works_without_shared_memory_too() {
    let xvfb = Xvfb::start_with(64, 48, &["-extension", "MIT-SHM"]);
    let painter = Painter::connect(&xvfb.display);
    painter.fill(0, 0, 64, 48, 0x00_11_22_33);
    let mut capture = capture::open(Some(&xvfb.display)).unwrap();
    let frame = capture.grab().unwrap();
    assert_eq!(frame.pixel(5, 5), (0x33, 0x22, 0x11));
    assert!(!capture.uses_shared_memory());
}

#[test]
fn no_display_is_a_clear_error() {
    let err = capture::open(Some(":987"))
        .err()
        .expect("no X server there");
    assert!(err.to_string().contains(":987"), "{err}");
}

#[test]
fn mouse_moves_clamps_and_clicks() {
    let xvfb = Xvfb::start(320, 200);
    let painter = Painter::connect(&xvfb.display);
    painter.window(EventMask::BUTTON_PRESS | EventMask::BUTTON_RELEASE);
    let mut input = XTestInput::connect(&xvfb.display).unwrap();

    input.mouse(100, 150, None).unwrap();
    assert_eq!(painter.pointer_at((100, 150)), (100, 150));
    input.mouse(5000, -20, None).unwrap();
    assert_eq!(
        painter.pointer_at((319, 0)),
        (319, 0),
        "clamped to the screen"
    );

    input.mouse(40, 60, Some((Button::Left, true))).unwrap();
    input.mouse(40, 60, Some((Button::Left, false))).unwrap();
    input.mouse(41, 61, Some((Button::Right, true))).unwrap();
    input.mouse(41, 61, Some((Button::Right, false))).unwrap();
    let events = painter.events(4);
    let seen: Vec<(bool, u8, i16, i16)> = events
        .iter()
        .map(|event| match event {
            Event::ButtonPress(e) => (true, e.detail, e.event_x, e.event_y),
            Event::ButtonRelease(e) => (false, e.detail, e.event_x, e.event_y),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        seen,
        [
            (true, 1, 40, 60),
            (false, 1, 40, 60),
            (true, 3, 41, 61),
            (false, 3, 41, 61)
        ]
    );
}

#[test]
fn typed_text_reaches_a_window() {
    let xvfb = Xvfb::start(320, 200);
    let painter = Painter::connect(&xvfb.display);
    painter.window(EventMask::KEY_PRESS);
    let mut input = XTestInput::connect(&xvfb.display).unwrap();
    input.mouse(50, 50, None).unwrap();

    let text = "Hi, X!";
    let mut presses = 0;
    for c in text.chars() {
        let (vk, shift) = keymap::char_to_vk(c).unwrap();
        if shift {
            input.key(keymap::VK_SHIFT, true).unwrap();
            presses += 1;
        }
        input.key(vk, true).unwrap();
        input.key(vk, false).unwrap();
        presses += 1;
        if shift {
            input.key(keymap::VK_SHIFT, false).unwrap();
        }
    }
    let typed = painter.typed(presses);
    assert_eq!(typed, text);
}

#[test]
fn frames_follow_changes() {
    let xvfb = Xvfb::start(200, 100);
    let painter = Painter::connect(&xvfb.display);
    painter.fill(0, 0, 200, 100, 0x00_00_00_00);
    let mut capture = capture::open(Some(&xvfb.display)).unwrap();
    let before = capture.grab().unwrap().pixels.to_vec();
    assert_eq!(
        capture.grab().unwrap().pixels,
        &before[..],
        "an unchanged screen grabs the same"
    );
    painter.fill(10, 10, 20, 20, 0x00_ff_ff_ff);
    std::thread::sleep(Duration::from_millis(20));
    let after = capture.grab().unwrap();
    assert_ne!(after.pixels, &before[..]);
    assert_eq!(after.pixel(15, 15), (0xff, 0xff, 0xff));
}

#[test]
fn a_wayland_session_without_x_is_named() {
    // nextest runs each test in its own process, so changing the environment is contained.
    std::env::remove_var("DISPLAY");
    std::env::set_var("WAYLAND_DISPLAY", "wayland-0");
    let err = capture::open(None).err().expect("no X display");
    assert!(err.to_string().contains("Wayland"), "{err}");
    std::env::remove_var("WAYLAND_DISPLAY");
    let err = capture::open(None).err().expect("no display at all");
    assert!(err.to_string().contains("DISPLAY"), "{err}");
}
