//! Fuzzes the desktop packet decoder: arbitrary datagrams must never panic, whatever decodes
//! must re-encode to the same bytes, and frame chunks must not break the reassembler.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use skyshift_proto::desk::{Control, Packet, Reassembler};

thread_local! {
    static REASSEMBLER: RefCell<Reassembler> = RefCell::new(Reassembler::new());
}

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::decode(data) else {
        return;
    };
    assert_eq!(packet.encode(), data, "decode then encode is the identity");
    match packet {
        Packet::Frame(chunk) => REASSEMBLER.with(|r| {
            let mut r = r.borrow_mut();
            if let Some(frame) = r.push(chunk) {
                assert!(!frame.image.is_empty());
            }
            assert!(r.buffered_bytes() <= skyshift_proto::desk::MAX_PARTIAL_BYTES);
        }),
        Packet::Control(json) => {
            if let Some(control) = Control::parse(&json) {
                let again = Control::parse(&control.to_json());
                assert_eq!(again, Some(control));
            }
        }
        _ => {}
    }
});
