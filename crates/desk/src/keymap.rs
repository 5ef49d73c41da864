//! Windows virtual-key codes (what the keyboard packet carries) to X keysyms, and typed
//! characters to the virtual keys (with Shift) that produce them on a US layout.

pub const VK_SHIFT: u16 = 0x10;
pub const VK_RETURN: u16 = 0x0D;

/// The keysym a virtual key stands for; letters map to their lower-case keysym (Shift is a key
/// of its own).
pub fn vk_to_keysym(vk: u16) -> Option<u32> {
    let keysym = match vk {
        0x08 => 0xff08,                               // BackSpace
        0x09 => 0xff09,                               // Tab
        0x0C => 0xff0b,                               // Clear
        0x0D => 0xff0d,                               // Return
        0x10 | 0xA0 => 0xffe1,                        // Shift_L
        0xA1 => 0xffe2,                               // Shift_R
        0x11 | 0xA2 => 0xffe3,                        // Control_L
        0xA3 => 0xffe4,                               // Control_R
        0x12 | 0xA4 => 0xffe9,                        // Alt_L
        0xA5 => 0xffea,                               // Alt_R
        0x13 => 0xff13,                               // Pause
        0x14 => 0xffe5,                               // Caps_Lock
        0x1B => 0xff1b,                               // Escape
        0x20 => 0x0020,                               // space
        0x21 => 0xff55,                               // Prior (Page Up)
        0x22 => 0xff56,                               // Next (Page Down)
        0x23 => 0xff57,                               // End
        0x24 => 0xff50,                               // Home
        0x25 => 0xff51,                               // Left
        0x26 => 0xff52,                               // Up
        0x27 => 0xff53,                               // Right
        0x28 => 0xff54,                               // Down
        0x2C => 0xff61,                               // Print
        0x2D => 0xff63,                               // Insert
        0x2E => 0xffff,                               // Delete
        0x30..=0x39 => u32::from(vk),                 // 0-9
        0x41..=0x5A => u32::from(vk) + 0x20,          // a-z
        0x5B => 0xffeb,                               // Super_L
        0x5C => 0xffec,                               // Super_R
        0x5D => 0xff67,                               // Menu
        0x60..=0x69 => 0xffb0 + u32::from(vk - 0x60), // KP_0-KP_9
        0x6A => 0xffaa,                               // KP_Multiply
        0x6B => 0xffab,                               // KP_Add
        0x6D => 0xffad,                               // KP_Subtract
        0x6E => 0xffae,                               // KP_Decimal
        0x6F => 0xffaf,                               // KP_Divide
        0x70..=0x87 => 0xffbe + u32::from(vk - 0x70), // F1-F24
        0x90 => 0xff7f,                               // Num_Lock
        0x91 => 0xff14,                               // Scroll_Lock
        0xBA => 0x003b,                               // semicolon
        0xBB => 0x003d,                               // equal
        0xBC => 0x002c,                               // comma
        0xBD => 0x002d,                               // minus
        0xBE => 0x002e,                               // period
        0xBF => 0x002f,                               // slash
        0xC0 => 0x0060,                               // grave
        0xDB => 0x005b,                               // bracketleft
        0xDC => 0x005c,                               // backslash
        0xDD => 0x005d,                               // bracketright
        0xDE => 0x0027,                               // apostrophe
        _ => return None,
    };
    Some(keysym)
}

/// The virtual key that types `c` on a US layout, and whether Shift must be held.
pub fn char_to_vk(c: char) -> Option<(u16, bool)> {
    let unshifted = |c: char| -> Option<u16> {
        Some(match c {
            'a'..='z' => c as u16 - 0x20,
            '0'..='9' => c as u16,
            ' ' => 0x20,
            '\n' => VK_RETURN,
            '\t' => 0x09,
            ';' => 0xBA,
            '=' => 0xBB,
            ',' => 0xBC,
            '-' => 0xBD,
            '.' => 0xBE,
            '/' => 0xBF,
            '`' => 0xC0,
            '[' => 0xDB,
            '\\' => 0xDC,
            ']' => 0xDD,
            '\'' => 0xDE,
            _ => return None,
        })
    };
    if let Some(vk) = unshifted(c) {
        return Some((vk, false));
    }
    let base = match c {
        'A'..='Z' => c.to_ascii_lowercase(),
        '!' => '1',
        '@' => '2',
        '#' => '3',
        '$' => '4',
        '%' => '5',
        '^' => '6',
        '&' => '7',
        '*' => '8',
        '(' => '9',
        ')' => '0',
        '_' => '-',
        '+' => '=',
        '{' => '[',
        '}' => ']',
        '|' => '\\',
        ':' => ';',
        '"' => '\'',
        '<' => ',',
        '>' => '.',
        '?' => '/',
        '~' => '`',
        _ => return None,
    };
    unshifted(base).map(|vk| (vk, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_digits_and_specials() {
        assert_eq!(vk_to_keysym(0x41), Some(u32::from(b'a')));
        assert_eq!(vk_to_keysym(0x5A), Some(u32::from(b'z')));
        assert_eq!(vk_to_keysym(0x35), Some(u32::from(b'5')));
        assert_eq!(vk_to_keysym(0x0D), Some(0xff0d));
        assert_eq!(vk_to_keysym(0x70), Some(0xffbe));
        assert_eq!(vk_to_keysym(0x87), Some(0xffbe + 23));
        assert_eq!(vk_to_keysym(0xFF), None);
    }

    #[test]
    fn typed_characters() {
        assert_eq!(char_to_vk('h'), Some((0x48, false)));
        assert_eq!(char_to_vk('H'), Some((0x48, true)));
        assert_eq!(char_to_vk('!'), Some((0x31, true)));
        assert_eq!(char_to_vk('\n'), Some((VK_RETURN, false)));
        assert_eq!(char_to_vk('é'), None);
        // Every printable ASCII character can be typed.
        for c in (0x20u8..0x7f).map(char::from) {
            let (vk, _) = char_to_vk(c).unwrap_or_else(|| panic!("{c:?}"));
            assert!(vk_to_keysym(vk).is_some(), "{c:?}");
        }
    }
}
