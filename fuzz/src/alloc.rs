//! A global allocator that aborts on one huge allocation, so that a length read from hostile
//! bytes and trusted (`Vec::with_capacity(declared)`) is a finding even when the memory is never
//! touched. libFuzzer's own `-malloc_limit_mb` needs a sanitizer's malloc hooks, which a stable
//! build without sanitizers does not have; `-rss_limit_mb` still bounds the total.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

/// Largest single allocation allowed: 1 GiB. Nothing Strata decodes from a fuzz input of a few
/// KiB has a reason to ask for more.
pub const MAX_ALLOCATION: usize = 1 << 30;

/// [`System`], but aborting on an allocation above [`MAX_ALLOCATION`].
pub struct CappedAlloc;

#[cold]
fn too_large(size: usize) -> ! {
    // No allocation here: the message is built in a stack buffer.
    let mut buf = [0u8; 96];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let _ = writeln!(
        cursor,
        "strata-fuzz: allocation of {size} bytes exceeds the cap of {MAX_ALLOCATION}"
    );
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    let _ = std::io::stderr().write_all(&buf[..len]);
    std::process::abort();
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the only
// addition is a size check before the call, which allocates nothing.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            too_large(layout.size());
        }
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            too_large(layout.size());
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOCATION {
            too_large(new_size);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
