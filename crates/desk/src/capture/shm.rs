//! The one place with `unsafe`: mapping an MIT-SHM segment the X server created for us.

#![allow(unsafe_code)]

use anyhow::Context;
use x11rb::connection::Connection;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;

/// A shared-memory segment the X server writes screen images into.
pub struct ShmSegment {
    pub id: shm::Seg,
    pub size: usize,
    map: memmap2::Mmap,
}

impl ShmSegment {
    /// Asks the server for a segment of `size` bytes (MIT-SHM 1.2 `CreateSegment`) and maps it.
    pub fn create(conn: &RustConnection, size: usize) -> anyhow::Result<Self> {
        let id = conn.generate_id()?;
        let size_u32 = u32::try_from(size).context("screen too large for one segment")?;
        let reply = conn.shm_create_segment(id, size_u32, false)?.reply()?;
        let file = std::fs::File::from(reply.shm_fd);
        // SAFETY: the mapping is read-only on our side. The X server writes into the segment only
        // while it serves a ShmGetImage, and we read the map only after that request's reply has
        // arrived, so no read overlaps a write. The file descriptor stays valid for the mapping's
        // life (memmap2 keeps its own reference to the mapping, not the fd).
        let map = unsafe { memmap2::MmapOptions::new().len(size).map(&file)? };
        Ok(Self { id, size, map })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map[..]
    }

    pub fn detach(&self, conn: &RustConnection) {
        let _ = conn.shm_detach(self.id);
    }
}
