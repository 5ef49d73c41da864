//! The desktop path of SkyShift Remote, except the network: capture a screen (`capture`),
//! encode it as JPEG (`encode`), and apply a technician's mouse and keyboard (`input`, with the
//! virtual-key table in `keymap`). The binaries `skyshift-client` and `skyshift-viewer` build on
//! these.

pub mod capture;
pub mod encode;
pub mod input;
pub mod keymap;
