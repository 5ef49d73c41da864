//! The desktop path of SkyShift Remote: capture a screen (`capture`), encode it as JPEG
//! (`encode`), apply a technician's mouse and keyboard (`input`, with the virtual-key table in
//! `keymap`); and the two programs built on them: the customer's `client` (stream the screen,
//! take input) and the technician's headless `viewer`, both talking to the server through `net`.

pub mod capture;
pub mod client;
pub mod encode;
pub mod input;
pub mod keymap;
pub mod net;
pub mod viewer;
