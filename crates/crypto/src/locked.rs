//! Page locking for secret buffers and process hardening: the only module in the workspace that uses `unsafe`.
//!
//! Secrets are small (32 bytes), so many of them share one memory page. `mlock(2)` is not
//! reference counted — one `munlock` unlocks the whole page, even while another secret still lives
//! in it — so this module keeps a process-wide count of live secrets per page. A page is locked
//! (and marked `MADV_DONTDUMP`, so it stays out of core dumps) when its first secret arrives and
//! unlocked when its last secret leaves. Callers zeroize their bytes before releasing a region.
//!
//! `memsec::mlock`/`munlock` are deliberately not used: they pass the caller's unaligned address
//! to `madvise`, which then fails silently (so `MADV_DONTDUMP` never applies to a heap buffer),
//! and `munlock` unlocks a page that may still hold other secrets.
//!
//! A failed lock (typically `RLIMIT_MEMLOCK` exhausted) is not an error: the secret still works,
//! the failure is counted in [`mlock_failures`], and [`mlock_available`] turns `false`.

#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Number of pages whose locking failed since the process started.
static MLOCK_FAILURES: AtomicU64 = AtomicU64::new(0);

/// `true` until the first locking failure; never goes back to `true`.
static MLOCK_AVAILABLE: AtomicBool = AtomicBool::new(true);

/// Live secrets per page, keyed by page start address.
static PAGES: Mutex<BTreeMap<usize, PageEntry>> = Mutex::new(BTreeMap::new());

struct PageEntry {
    /// Live regions touching this page.
    count: usize,
    /// Whether `mlock` succeeded for this page.
    locked: bool,
}

/// How many times locking a page of secret memory has failed in this process.
///
/// A non-zero value means some secrets may be swapped to disk; raise `ulimit -l`
/// (`RLIMIT_MEMLOCK`) or give the process `CAP_IPC_LOCK`.
///
/// ```
/// let _key = openkcm_crypto::SecretKey::generate().unwrap();
/// let failures: u64 = openkcm_crypto::mlock_failures();
/// assert_eq!(failures == 0, openkcm_crypto::mlock_available());
/// ```
pub fn mlock_failures() -> u64 {
    MLOCK_FAILURES.load(Ordering::Relaxed)
}

/// `false` once any attempt to lock secret memory has failed in this process.
///
/// This is the one-time warning flag: callers (the Core's start-up, the metrics endpoint) read it
/// and report loudly, or refuse to run when `require_mlock` is configured.
pub fn mlock_available() -> bool {
    MLOCK_AVAILABLE.load(Ordering::Relaxed)
}

fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf reads a process-wide constant and touches no memory of ours.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(size)
            .ok()
            .filter(|s| s.is_power_of_two())
            .unwrap_or(4096)
    })
}

/// Page start addresses covering `[addr, addr + len)`.
fn pages(addr: usize, len: usize) -> impl Iterator<Item = usize> {
    let size = page_size();
    let first = addr & !(size - 1);
    let last = addr.saturating_add(len.max(1) - 1) & !(size - 1);
    (first..=last).step_by(size)
}

fn record_failure() {
    MLOCK_FAILURES.fetch_add(1, Ordering::Relaxed);
    MLOCK_AVAILABLE.store(false, Ordering::Relaxed);
}

#[cfg(unix)]
fn os_lock_page(page: usize) -> bool {
    let size = page_size();
    let ptr = page as *mut libc::c_void;
    #[cfg(target_os = "linux")]
    // SAFETY: madvise only changes the dump flag of the mapping that holds `page`; it reads and
    // writes no bytes, and a bad range makes it return an error (ignored: best effort).
    unsafe {
        libc::madvise(ptr, size, libc::MADV_DONTDUMP);
    }
    // SAFETY: mlock pins the page in RAM without reading or writing it; a range that is not
    // mapped makes it fail with ENOMEM, which we report as a lock failure.
    unsafe { libc::mlock(ptr, size) == 0 }
}

#[cfg(not(unix))]
fn os_lock_page(_page: usize) -> bool {
    false
}

#[cfg(unix)]
fn os_unlock_page(page: usize, was_locked: bool) {
    let size = page_size();
    let ptr = page as *mut libc::c_void;
    if was_locked {
        // SAFETY: munlock only unpins the page; no live secret remains in it (its count reached
        // zero under the PAGES mutex), and it reads and writes no bytes.
        unsafe {
            libc::munlock(ptr, size);
        }
    }
    #[cfg(target_os = "linux")]
    // SAFETY: as for MADV_DONTDUMP above, this only flips the dump flag of the mapping back.
    unsafe {
        libc::madvise(ptr, size, libc::MADV_DODUMP);
    }
}

#[cfg(not(unix))]
fn os_unlock_page(_page: usize, _was_locked: bool) {}

/// Registers a live secret at `bytes`: locks every page it touches that is not locked yet.
///
/// Every call must be matched by one [`release`] with the same slice address and length, made
/// after the bytes have been zeroized and before the memory is freed.
pub(crate) fn acquire(bytes: &[u8]) {
    let addr = bytes.as_ptr() as usize;
    let mut table = PAGES.lock().unwrap_or_else(PoisonError::into_inner);
    for page in pages(addr, bytes.len()) {
        let entry = table.entry(page).or_insert(PageEntry {
            count: 0,
            locked: false,
        });
        if !entry.locked {
            entry.locked = os_lock_page(page);
            if !entry.locked {
                record_failure();
            }
        }
        entry.count += 1;
    }
}

/// Unregisters a secret registered with [`acquire`]; pages with no secret left are unlocked.
pub(crate) fn release(bytes: &[u8]) {
    let addr = bytes.as_ptr() as usize;
    let mut table = PAGES.lock().unwrap_or_else(PoisonError::into_inner);
    for page in pages(addr, bytes.len()) {
        let remove = match table.get_mut(&page) {
            Some(entry) => {
                entry.count = entry.count.saturating_sub(1);
                entry.count == 0
            }
            None => false,
        };
        if remove {
            if let Some(entry) = table.remove(&page) {
                os_unlock_page(page, entry.locked);
            }
        }
    }
}

/// Process hardening of DESIGN §3.1: no core dumps (`RLIMIT_CORE` = 0) and not dumpable
/// (`PR_SET_DUMPABLE` = 0, which also keeps other same-user processes from ptrace-attaching).
/// Call once at start, before any secret exists. Returns a sentence per step that failed.
pub fn harden_process() -> Result<(), String> {
    let mut failures = Vec::new();
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `setrlimit` reads the fully initialised `rlimit` value behind the pointer and nothing else.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } != 0 {
        failures.push(format!(
            "cannot disable core dumps: {}",
            std::io::Error::last_os_error()
        ));
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `prctl(PR_SET_DUMPABLE, 0)` takes integer arguments only and touches no memory of ours.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            failures.push(format!(
                "cannot mark the process non-dumpable: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardening_turns_core_dumps_off_and_makes_the_process_undumpable() {
        harden_process().expect("hardening succeeds for an unprivileged change");
        let mut limit = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: getrlimit writes into the rlimit struct we own; prctl(PR_GET_DUMPABLE) takes no pointers.
        let (rc, dumpable) = unsafe {
            (
                libc::getrlimit(libc::RLIMIT_CORE, &mut limit),
                libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0),
            )
        };
        assert_eq!(rc, 0);
        assert_eq!((limit.rlim_cur, limit.rlim_max), (0, 0));
        assert_eq!(dumpable, 0, "PR_SET_DUMPABLE 0 must hold");
    }

    #[test]
    fn pages_cover_a_region_that_straddles_a_boundary() {
        let size = page_size();
        let v: Vec<usize> = pages(size * 3 - 4, 8).collect();
        assert_eq!(v, vec![size * 2, size * 3]);
        let v: Vec<usize> = pages(size * 3, 32).collect();
        assert_eq!(v, vec![size * 3]);
        let v: Vec<usize> = pages(size * 3 + 5, 0).collect();
        assert_eq!(v, vec![size * 3]);
    }

    #[test]
    fn shared_page_stays_registered_until_its_last_secret_leaves() {
        let buf = Box::new([0u8; 64]);
        let (a, b) = buf.split_at(32);
        let page = pages(a.as_ptr() as usize, 32).next().unwrap_or(0);
        acquire(a);
        acquire(b);
        release(a);
        {
            let table = PAGES.lock().unwrap();
            assert!(table.get(&page).map(|e| e.count).unwrap_or(0) >= 1);
        }
        release(b);
    }
}
