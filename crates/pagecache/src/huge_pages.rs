//! Asking the kernel to back the frame arena with huge pages: the one
//! `unsafe` block of the crate.
//!
//! Random hits land on a different 4 KiB page almost every read, so with
//! base pages nearly every hit also misses the TLB and walks the page
//! table before its memory access can start; 2 MiB pages cover a 40 MiB
//! arena with 20 TLB entries. On Linux with transparent huge pages in
//! `madvise` mode (a common default) nothing but `madvise` gives an
//! allocation huge pages. Measured (random `get_u64_le` over 10,000
//! resident 4 KiB pages, 16k reads, interleaved runs): 157 to 179 µs
//! without, 112 to 115 µs with, a third less time per hit.

use std::mem::MaybeUninit;

/// The huge page size on x86-64 (and arm64 with 4 KiB base pages); only
/// whole, aligned huge pages of the range are advised.
const HUGE_PAGE: usize = 2 << 20;

/// Advises the kernel to back the whole 2 MiB pages inside `spare`
/// (memory this process allocated and has not used yet) with huge pages.
/// A hint: without it, or where the kernel ignores it, hits are slower,
/// never wrong. Ranges holding no whole huge page are left alone, so small
/// caches do not split the heap's mappings.
///
/// # Errors
/// The kernel's error (`EINVAL` where transparent huge pages are not built
/// in); the memory is unchanged and usable either way.
pub(crate) fn advise<T>(spare: &mut [MaybeUninit<T>]) -> std::io::Result<()> {
    let start = spare.as_mut_ptr().cast::<u8>();
    let len = std::mem::size_of_val(spare);
    let skip = start.align_offset(HUGE_PAGE);
    let whole = len.saturating_sub(skip) / HUGE_PAGE * HUGE_PAGE;
    if whole == 0 {
        return Ok(());
    }
    advise_range(start.wrapping_add(skip), whole)
}

#[cfg(all(target_os = "linux", not(miri)))]
#[allow(unsafe_code)]
fn advise_range(start: *mut u8, len: usize) -> std::io::Result<()> {
    // SAFETY: `start..start + len` lies inside the slice `advise` borrows
    // mutably (it is its 2 MiB-aligned interior), so no other code uses
    // that memory while the kernel looks at it. MADV_HUGEPAGE only changes
    // the size of the pages the kernel backs the range with: contents,
    // mapping and protection stay as they are, so nothing Rust relies on
    // about this memory changes.
    unsafe { rustix::mm::madvise(start.cast(), len, rustix::mm::Advice::LinuxHugepage) }?;
    Ok(())
}

/// Elsewhere (and under Miri, which cannot run the system call) the hint
/// is not given.
#[cfg(not(all(target_os = "linux", not(miri))))]
fn advise_range(_start: *mut u8, _len: usize) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advised_memory_keeps_every_value_written_to_it() {
        // Miri gives no hint (it cannot run the call): keep its run short.
        let words = if cfg!(miri) {
            1000
        } else {
            3 * HUGE_PAGE / 8 + 123
        };
        let mut arena: Vec<u64> = Vec::with_capacity(words);
        let advised = advise(arena.spare_capacity_mut());
        // EINVAL only where the kernel has no transparent huge pages.
        assert!(
            advised
                .as_ref()
                .map_or_else(|e| e.kind() == std::io::ErrorKind::InvalidInput, |()| true),
            "{advised:?}"
        );
        arena.extend((0..words as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        assert!(
            arena
                .iter()
                .enumerate()
                .all(|(i, &w)| w == (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        );
    }

    /// Whether the kernel backs advised memory with huge pages.
    fn thp_available() -> bool {
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .is_ok_and(|mode| mode.contains("[always]") || mode.contains("[madvise]"))
    }

    /// The `THPeligible` flag `/proc/self/smaps` shows for the mapping
    /// holding `addr`: 1 under `enabled=madvise` only once it was advised.
    fn thp_eligible(addr: usize) -> Option<bool> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            let head = line.split_whitespace().next().unwrap_or("");
            if let Some((lo, hi)) = head.split_once('-')
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&addr);
            } else if inside && let Some(flag) = line.strip_prefix("THPeligible:") {
                return Some(flag.trim() == "1");
            }
        }
        None
    }

    #[test]
    #[cfg_attr(miri, ignore = "reads /proc; the hint is not given under Miri")]
    fn a_cache_arena_is_eligible_for_huge_pages() {
        let frames = crate::frames::Frames::new(2048, 4096).unwrap();
        if cfg!(target_os = "linux") && thp_available() {
            assert_eq!(thp_eligible(frames.arena_middle()), Some(true));
        }
    }

    #[test]
    fn ranges_without_a_whole_huge_page_are_left_alone() {
        let mut small: Vec<u8> = Vec::with_capacity(HUGE_PAGE - 1);
        assert!(advise(small.spare_capacity_mut()).is_ok());
        let mut none: Vec<u64> = Vec::new();
        assert!(advise(none.spare_capacity_mut()).is_ok());
    }
}
