//! Rust-side tests of the C ABI: codes, NULL and bad-input handling, the
//! panic boundary, and a round trip through init, attach and the calls.

use super::*;
use core::ptr::{null, null_mut};

export! {
    /// A test-only export that panics, to test the boundary.
    fn fg_test_panic(t: *const fg_table) nonnull(t) {
        panic!("boom")
    }
}

fn config(capacity: u32) -> fg_config {
    fg_config {
        capacity,
        lease_capacity: capacity,
        interval_ns: 1_000_000_000,
        epoch_ns: 0,
        seed: 7,
    }
}

/// A zeroed 8-aligned region of `bytes` (u64 backing).
fn region(bytes: usize) -> Vec<u64> {
    vec![0u64; bytes.div_ceil(8)]
}

fn handle() -> fg_table {
    fg_table {
        opaque: [0; FG_TABLE_HANDLE_WORDS],
    }
}

#[test]
fn version_matches_cargo() {
    assert_eq!(
        FG_VERSION_MAJOR.to_string(),
        env!("CARGO_PKG_VERSION_MAJOR")
    );
    assert_eq!(
        FG_VERSION_MINOR.to_string(),
        env!("CARGO_PKG_VERSION_MINOR")
    );
    assert_eq!(
        FG_VERSION_PATCH.to_string(),
        env!("CARGO_PKG_VERSION_PATCH")
    );
    assert_eq!(
        fg_version(),
        FG_VERSION_MAJOR << 16 | FG_VERSION_MINOR << 8 | FG_VERSION_PATCH
    );
    // SAFETY: fg_version_string returns a static NUL-terminated string.
    let s = unsafe { core::ffi::CStr::from_ptr(fg_version_string()) };
    assert_eq!(s.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn every_code_is_distinct_and_described() {
    let codes: Vec<i32> = DESCRIPTIONS.iter().map(|(c, _)| *c as i32).collect();
    let mut sorted = codes.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), codes.len());
    for (c, d) in DESCRIPTIONS {
        assert!(d.ends_with('\0') && d.len() > 1);
        assert_eq!(describe(c as i32), d);
        if (c as i32) < 0
            && c != fg_result::FG_DROP
            && c != fg_result::FG_NO_PIPE
            && c != fg_result::FG_REFUSED
            && c != fg_result::FG_GROUP_FULL
        {
            assert!((c as i32) <= -100, "{c:?} errors live below -99");
        }
    }
    assert_eq!(describe(12345), "unknown result code\0");
    // SAFETY: static NUL-terminated strings.
    let s = unsafe { core::ffi::CStr::from_ptr(fg_strerror(-1)) };
    assert_eq!(s.to_str().unwrap(), "drop");
    // Kamailio's codes.
    assert_eq!(fg_result::FG_PASS as i32, 1);
    assert_eq!(fg_result::FG_DROP as i32, -1);
    assert_eq!(fg_result::FG_NO_PIPE as i32, -2);
    assert_eq!(fg_result::FG_PASS_NOP as i32, 2);
    // Codes appended later keep theirs too.
    assert_eq!(fg_result::FG_E_PANIC as i32, -123);
    assert_eq!(fg_result::FG_E_BUSY as i32, -124);
    assert_eq!(fg_result::FG_E_STALE as i32, -125);
    // Every core error maps to its own code.
    let errors = Error::ALL;
    let mut mapped: Vec<i32> = errors.iter().map(|e| fg_result::from(*e) as i32).collect();
    mapped.sort();
    mapped.dedup();
    assert_eq!(mapped.len(), errors.len());
}

#[test]
fn nulls_bad_handles_and_panics_give_codes() {
    // SAFETY: every pointer passed below points to a live local of the
    // right type and size (or is deliberately NULL); regions outlive handles.
    unsafe {
        assert_eq!(fg_check(null(), b"k".as_ptr(), 1, 0), fg_result::FG_E_NULL);
        let h = handle();
        assert_eq!(fg_check(&h, null(), 1, 0), fg_result::FG_E_NULL);
        assert_eq!(
            fg_check(&h, b"k".as_ptr(), 1, 0),
            fg_result::FG_E_BAD_HANDLE
        );
        assert_eq!(fg_test_panic(&h), fg_result::FG_E_PANIC);
        assert_eq!(fg_test_panic(null()), fg_result::FG_E_NULL);
        let mut n = 0usize;
        assert_eq!(fg_table_bytes(null(), &mut n), fg_result::FG_E_NULL);
        assert_eq!(
            fg_table_bytes(&config(0), &mut n),
            fg_result::FG_E_INVALID_CAPACITY
        );
        assert_eq!(n, 0, "out-pointers are written only on success");
        let mut zero = config(4);
        zero.interval_ns = 0;
        assert_eq!(fg_table_bytes(&zero, &mut n), fg_result::FG_E_ZERO_INTERVAL);
    }
}

#[test]
fn round_trip_through_init_attach_and_calls() {
    // SAFETY: every pointer passed below points to a live local of the
    // right type and size (or is deliberately NULL); regions outlive handles.
    unsafe {
        let c = config(16);
        let mut need = 0usize;
        assert_eq!(fg_table_bytes(&c, &mut need), fg_result::FG_OK);
        let mut mem = region(need + 8);
        let base = mem.as_mut_ptr().cast::<core::ffi::c_void>();
        let mut t = handle();
        assert_eq!(
            fg_table_init(base, need - 1, &c, &mut t),
            fg_result::FG_E_REGION_TOO_SMALL
        );
        assert_eq!(
            fg_table_init(base.cast::<u8>().add(4).cast(), need, &c, &mut t),
            fg_result::FG_E_MISALIGNED
        );
        assert_eq!(
            fg_table_attach(base, need, &mut t),
            fg_result::FG_E_NOT_A_TABLE
        );
        assert_eq!(fg_table_init(base, need, &c, &mut t), fg_result::FG_OK);
        let mut t2 = handle();
        assert_eq!(fg_table_attach(base, need, &mut t2), fg_result::FG_OK);

        let k = b"10.0.0.1";
        assert_eq!(fg_check(&t, k.as_ptr(), k.len(), 0), fg_result::FG_NO_PIPE);
        assert_eq!(
            fg_check_create(&t, k.as_ptr(), k.len(), FG_ALGO_TAILDROP, 1, 0),
            fg_result::FG_PASS
        );
        assert_eq!(fg_check(&t2, k.as_ptr(), k.len(), 1), fg_result::FG_DROP);
        assert_eq!(
            fg_check_create(&t, k.as_ptr(), k.len(), 99, 1, 0),
            fg_result::FG_E_UNKNOWN_ALGORITHM
        );
        assert_eq!(fg_check(&t, k.as_ptr(), 0, 0), fg_result::FG_E_EMPTY_KEY);
        assert_eq!(
            fg_check(
                &t,
                [0u8; FG_MAX_KEY_LEN + 1].as_ptr(),
                FG_MAX_KEY_LEN + 1,
                0
            ),
            fg_result::FG_E_KEY_TOO_LONG
        );
        assert_eq!(fg_active(&t, k.as_ptr(), k.len()), fg_result::FG_OK);
        let mut e = core::mem::zeroed::<fg_entry>();
        assert_eq!(fg_get(&t, k.as_ptr(), k.len(), 2, &mut e), fg_result::FG_OK);
        assert_eq!(
            (e.counter, e.limit, e.algorithm, e.key_len),
            (2, 1, FG_ALGO_TAILDROP, 8)
        );

        // Listing through a callback.
        unsafe extern "C" fn count(_: *const fg_entry, ctx: *mut core::ffi::c_void) -> i32 {
            // SAFETY: ctx is the &mut u32 passed to fg_list below.
            unsafe { *ctx.cast::<u32>() += 1 };
            0
        }
        let mut n = 0u32;
        assert_eq!(
            fg_list(&t, 0, Some(count), (&mut n as *mut u32).cast()),
            fg_result::FG_OK
        );
        assert_eq!(n, 1);
        assert_eq!(fg_list(&t, 0, None, null_mut()), fg_result::FG_E_NULL);

        // Slots, leases, balance.
        assert_eq!(
            fg_slot_acquire(&t, b"room".as_ptr(), 4, 1, 0),
            fg_result::FG_ACQUIRED
        );
        assert_eq!(
            fg_slot_acquire(&t, b"room".as_ptr(), 4, 1, 0),
            fg_result::FG_REFUSED
        );
        let mut u = 9u32;
        assert_eq!(
            fg_slot_usage(&t, b"room".as_ptr(), 4, 0, &mut u),
            fg_result::FG_OK
        );
        assert_eq!(u, 1);
        assert_eq!(
            fg_slot_release(&t, b"room".as_ptr(), 4, 0),
            fg_result::FG_RELEASED
        );
        assert_eq!(
            fg_slot_release(&t, b"room".as_ptr(), 4, 0),
            fg_result::FG_UNMATCHED
        );
        let mut lease = 0u64;
        assert_eq!(
            fg_lease_acquire(&t, b"node".as_ptr(), 4, 1, 10, 0, &mut lease),
            fg_result::FG_ACQUIRED
        );
        assert_eq!(fg_lease_release(&t, lease, 1), fg_result::FG_RELEASED);
        assert_eq!(
            fg_lease_release(&t, lease, 1),
            fg_result::FG_ALREADY_RELEASED
        );
        let keys = [b"v1".as_ptr(), b"v2".as_ptr()];
        let lens = [2usize, 2];
        let mut member = 99usize;
        for want in [0, 1] {
            assert_eq!(
                fg_balance_acquire(
                    &t,
                    keys.as_ptr(),
                    lens.as_ptr(),
                    2,
                    1,
                    -1,
                    0,
                    0,
                    &mut member,
                    null_mut()
                ),
                fg_result::FG_ACQUIRED
            );
            assert_eq!(member, want);
        }
        assert_eq!(
            fg_balance_acquire(
                &t,
                keys.as_ptr(),
                lens.as_ptr(),
                2,
                1,
                -1,
                0,
                0,
                &mut member,
                null_mut()
            ),
            fg_result::FG_GROUP_FULL
        );
        assert_eq!(
            fg_balance_acquire(
                &t,
                keys.as_ptr(),
                lens.as_ptr(),
                0,
                1,
                -1,
                0,
                0,
                &mut member,
                null_mut()
            ),
            fg_result::FG_E_INVALID_GROUP
        );

        // Interval limits and their settings.
        assert_eq!(
            fg_rate_check(
                &t,
                b"r".as_ptr(),
                1,
                1,
                10,
                FG_ANCHOR_ALIGNED,
                FG_MAX_ZERO_REFUSE_ALL,
                0
            ),
            fg_result::FG_PASS
        );
        assert_eq!(
            fg_rate_check(
                &t,
                b"r".as_ptr(),
                1,
                1,
                10,
                FG_ANCHOR_ALIGNED,
                FG_MAX_ZERO_REFUSE_ALL,
                1
            ),
            fg_result::FG_DROP
        );
        assert_eq!(fg_interval_reset(&t, b"r".as_ptr(), 1, 2), fg_result::FG_OK);
        assert_eq!(
            fg_rate_check(
                &t,
                b"r".as_ptr(),
                1,
                1,
                10,
                FG_ANCHOR_ALIGNED,
                FG_MAX_ZERO_REFUSE_ALL,
                3
            ),
            fg_result::FG_PASS
        );
        assert_eq!(
            fg_rate_check(
                &t,
                b"r".as_ptr(),
                1,
                1,
                0,
                FG_ANCHOR_ALIGNED,
                FG_MAX_ZERO_REFUSE_ALL,
                3
            ),
            fg_result::FG_E_ZERO_INTERVAL
        );
        assert_eq!(
            fg_rate_check(&t, b"r".as_ptr(), 1, 1, 10, 7, FG_MAX_ZERO_REFUSE_ALL, 3),
            fg_result::FG_E_INVALID_ARGUMENT
        );

        // The controller.
        assert_eq!(
            fg_pipe_set(&t, b"fb".as_ptr(), 2, FG_ALGO_FEEDBACK, 50, 0),
            fg_result::FG_OK
        );
        let mut rate = 0u32;
        for want in [10, 20, 30] {
            assert_eq!(fg_push_load(&t, 0.9, &mut rate), fg_result::FG_OK);
            assert_eq!(rate, want);
        }
        assert_eq!(
            fg_push_load(&t, f64::NAN, &mut rate),
            fg_result::FG_E_INVALID_LOAD
        );
        assert_eq!(
            fg_pid_set(&t, f64::INFINITY, 0.0, 0.0),
            fg_result::FG_E_INVALID_GAIN
        );
        let mut p = core::mem::zeroed::<fg_pid>();
        assert_eq!(fg_pid_get(&t, &mut p), fg_result::FG_OK);
        assert_eq!((p.setpoint, p.ki, p.drop_rate), (0.5, -25.0, 30));
        assert_eq!(fg_push_network(&t, 10), fg_result::FG_OK);
        let mut a = 0u32;
        assert_eq!(
            fg_algorithm_from_name(b"red".as_ptr().cast(), 3, &mut a),
            fg_result::FG_OK
        );
        assert_eq!(a, FG_ALGO_RED);
        assert_eq!(
            fg_algorithm_from_name(b"blue".as_ptr().cast(), 4, &mut a),
            fg_result::FG_E_UNKNOWN_ALGORITHM
        );
        assert_eq!(fg_pipe_remove(&t, k.as_ptr(), k.len()), fg_result::FG_OK);
        assert_eq!(
            fg_pipe_remove(&t, k.as_ptr(), k.len()),
            fg_result::FG_NO_PIPE
        );
        let mut removed = 0usize;
        assert_eq!(
            fg_clean_unused(&t, 1, u64::MAX, &mut removed),
            fg_result::FG_OK
        );
        assert!(removed >= 1);
        assert!(fg_now_ns() > 0);
        drop(mem);
    }
}

#[test]
fn a_resolved_handle_checks_and_goes_stale_when_its_entry_goes() {
    // SAFETY: every pointer passed below points to a live local of the
    // right type and size (or is deliberately NULL); the region outlives
    // the handle.
    unsafe {
        let c = config(4);
        let mut need = 0usize;
        assert_eq!(fg_table_bytes(&c, &mut need), fg_result::FG_OK);
        let mut mem = region(need);
        let mut t = handle();
        assert_eq!(
            fg_table_init(mem.as_mut_ptr().cast(), need, &c, &mut t),
            fg_result::FG_OK
        );
        let k = b"trunk-1";
        let mut h = 42u64;
        assert_eq!(
            fg_resolve(&t, k.as_ptr(), k.len(), &mut h),
            fg_result::FG_NO_PIPE
        );
        assert_eq!(h, 42, "out-pointers are written only on success");
        assert_eq!(
            fg_resolve(&t, k.as_ptr(), k.len(), null_mut()),
            fg_result::FG_E_NULL
        );
        assert_eq!(
            fg_resolve(&t, k.as_ptr(), 0, &mut h),
            fg_result::FG_E_EMPTY_KEY
        );
        assert_eq!(
            fg_check_create(&t, k.as_ptr(), k.len(), FG_ALGO_TAILDROP, 2, 0),
            fg_result::FG_PASS
        );
        assert_eq!(
            fg_resolve(&t, k.as_ptr(), k.len(), &mut h),
            fg_result::FG_OK
        );
        assert_eq!(fg_check_ref(&t, h, 1), fg_result::FG_PASS);
        assert_eq!(fg_check_ref(&t, h, 2), fg_result::FG_DROP);
        assert_eq!(fg_check(&t, k.as_ptr(), k.len(), 3), fg_result::FG_DROP);
        assert_eq!(fg_check_ref(null(), h, 2), fg_result::FG_E_NULL);
        assert_eq!(fg_check_ref(&handle(), h, 2), fg_result::FG_E_BAD_HANDLE);
        assert_eq!(fg_check_ref(&t, u64::MAX, 2), fg_result::FG_E_STALE);
        // Deleted, then the slot reused by another key: stale, and the
        // other key's count is untouched.
        assert_eq!(fg_pipe_remove(&t, k.as_ptr(), k.len()), fg_result::FG_OK);
        assert_eq!(fg_check_ref(&t, h, 4), fg_result::FG_E_STALE);
        for other in [&b"a"[..], b"b", b"c", b"d"] {
            assert_eq!(
                fg_check_create(&t, other.as_ptr(), other.len(), FG_ALGO_TAILDROP, 1, 5),
                fg_result::FG_PASS
            );
        }
        assert_eq!(fg_check_ref(&t, h, 6), fg_result::FG_E_STALE);
        for other in [&b"a"[..], b"b", b"c", b"d"] {
            assert_eq!(
                fg_check(&t, other.as_ptr(), other.len(), 7),
                fg_result::FG_DROP
            );
        }
        let stale = core::ffi::CStr::from_ptr(fg_strerror(fg_result::FG_E_STALE as i32));
        assert!(stale.to_str().unwrap().contains("resolve the key again"));

        // An interval limit through its handle: the entry's window, each
        // call's max; another kind is refused; a stale handle touches nothing.
        let r = b"carrier";
        assert_eq!(
            fg_pipe_remove(&t, b"d".as_ptr(), 1),
            fg_result::FG_OK,
            "room for it"
        );
        assert_eq!(
            fg_rate_check(
                &t,
                r.as_ptr(),
                r.len(),
                1,
                10,
                FG_ANCHOR_FIRST_EVENT,
                FG_MAX_ZERO_MOD_HASH,
                8
            ),
            fg_result::FG_PASS
        );
        let mut rh = 0u64;
        assert_eq!(
            fg_resolve(&t, r.as_ptr(), r.len(), &mut rh),
            fg_result::FG_OK
        );
        assert_eq!(fg_rate_check_ref(&t, rh, 1, 9), fg_result::FG_DROP);
        assert_eq!(fg_rate_check_ref(&t, rh, 3, 10), fg_result::FG_PASS);
        assert_eq!(
            fg_rate_check_ref(&t, rh, 3, 18),
            fg_result::FG_PASS,
            "a new window at 18"
        );
        assert_eq!(fg_rate_check_ref(null(), rh, 3, 18), fg_result::FG_E_NULL);
        assert_eq!(
            fg_rate_check_ref(&handle(), rh, 3, 18),
            fg_result::FG_E_BAD_HANDLE
        );
        let mut p = 0u64;
        assert_eq!(fg_resolve(&t, b"a".as_ptr(), 1, &mut p), fg_result::FG_OK);
        let mut e = core::mem::zeroed::<fg_entry>();
        assert_eq!(
            fg_rate_check_ref(&t, p, 3, 18),
            fg_result::FG_E_WRONG_ALGORITHM
        );
        assert_eq!(fg_get(&t, b"a".as_ptr(), 1, 18, &mut e), fg_result::FG_OK);
        assert_eq!(e.counter, 2, "a untouched");
        assert_eq!(fg_pipe_remove(&t, r.as_ptr(), r.len()), fg_result::FG_OK);
        assert_eq!(fg_rate_check_ref(&t, rh, 3, 19), fg_result::FG_E_STALE);
    }
}

#[test]
fn every_export_goes_through_the_macro() {
    // `#[no_mangle]` may only appear in the two arms of `export!`, so an
    // export cannot skip the NULL checks and the panic boundary.
    let attr = concat!("#[", "no_mangle]");
    let attrs = |src: &str| src.lines().filter(|l| l.trim() == attr).count();
    assert_eq!(attrs(include_str!("lib.rs")), 2);
    assert_eq!(attrs(include_str!("codes.rs")), 0);
    assert_eq!(attrs(include_str!("tests.rs")), 0);
    assert_eq!(
        include_str!("lib.rs")
            .matches("extern \"C\" fn fg_")
            .count(),
        0
    );
}

#[test]
fn non_result_exports_answer() {
    assert!(fg_now_ns() > 0);
    // SAFETY: static NUL-terminated strings.
    let e = unsafe { core::ffi::CStr::from_ptr(fg_strerror(fg_result::FG_E_NULL as i32)) };
    assert_eq!(e.to_str().unwrap(), "a required pointer is NULL");
}

#[test]
#[cfg_attr(miri, ignore = "Miri does not support kill(2)")]
fn a_lock_held_by_a_live_process_is_fg_e_busy_and_changes_nothing() {
    use core::sync::atomic::{AtomicU32, Ordering};
    use fg::table::{entries_word, ENTRY_WORDS};
    /// Header word of the controller lock (the layout's; not public).
    const CTRL_LOCK: usize = 13;
    unsafe extern "C" fn count(_: *const fg_entry, ctx: *mut core::ffi::c_void) -> i32 {
        // SAFETY: ctx is the &mut u32 passed below.
        unsafe { *ctx.cast::<u32>() += 1 };
        0
    }
    // SAFETY: every pointer passed below points to a live local of the
    // right type and size; the region outlives the handle, and its words
    // are only touched atomically, here and by the table.
    unsafe {
        let c = config(4);
        let mut need = 0usize;
        assert_eq!(fg_table_bytes(&c, &mut need), fg_result::FG_OK);
        let mut mem = region(need);
        let base = mem.as_mut_ptr();
        let mut t = handle();
        assert_eq!(
            fg_table_init(base.cast(), need, &c, &mut t),
            fg_result::FG_OK
        );
        let k = b"a";
        assert_eq!(
            fg_check_create(&t, k.as_ptr(), 1, FG_ALGO_TAILDROP, 5, 0),
            fg_result::FG_PASS
        );
        // A SLOTS entry with a lease (counted under its lock), and one
        // without (hot).
        let s = b"s";
        let mut lease = 0u64;
        assert_eq!(
            fg_lease_acquire(&t, s.as_ptr(), 1, 3, 0, 0, &mut lease),
            fg_result::FG_ACQUIRED
        );
        let h = b"h";
        assert_eq!(
            fg_slot_acquire(&t, h.as_ptr(), 1, 3, 0),
            fg_result::FG_ACQUIRED
        );
        let word = |i: usize| &*base.cast::<AtomicU32>().add(i);
        // Every entry lock and the controller lock name pid 1: alive, and
        // never unlocking.
        let locks: Vec<usize> = (0..4)
            .map(|e| entries_word(4) + e * ENTRY_WORDS)
            .chain([CTRL_LOCK])
            .collect();
        let saved: Vec<u32> = locks
            .iter()
            .map(|&i| word(i).swap(1, Ordering::Relaxed))
            .collect();
        // The rate pipe is hot: checks and reads take no lock.
        assert_eq!(fg_check(&t, k.as_ptr(), 1, 1), fg_result::FG_PASS);
        let mut e = core::mem::zeroed::<fg_entry>();
        assert_eq!(fg_get(&t, k.as_ptr(), 1, 1, &mut e), fg_result::FG_OK);
        assert_eq!(e.counter, 2);
        // So is the SLOTS entry without a lease: acquires and usage go on.
        assert_eq!(
            fg_slot_acquire(&t, h.as_ptr(), 1, 3, 1),
            fg_result::FG_ACQUIRED
        );
        let mut usage = 77u32;
        assert_eq!(
            fg_slot_usage(&t, h.as_ptr(), 1, 1, &mut usage),
            fg_result::FG_OK
        );
        assert_eq!(usage, 2);
        // The SLOTS entry with a lease (a locked kind) and removals need
        // the lock.
        usage = 77;
        assert_eq!(
            fg_slot_usage(&t, s.as_ptr(), 1, 1, &mut usage),
            fg_result::FG_E_BUSY
        );
        assert_eq!(usage, 77, "out-pointers are written only on success");
        assert_eq!(
            fg_slot_acquire(&t, s.as_ptr(), 1, 3, 1),
            fg_result::FG_E_BUSY
        );
        assert_eq!(fg_pipe_remove(&t, k.as_ptr(), 1), fg_result::FG_E_BUSY);
        let mut listed = 0u32;
        assert_eq!(
            fg_list(&t, 1, Some(count), (&mut listed as *mut u32).cast()),
            fg_result::FG_OK
        );
        assert_eq!(
            listed, 2,
            "the hot pipe and hot SLOTS are listed, the stuck SLOTS left out"
        );
        let mut removed = 99usize;
        assert_eq!(
            fg_clean_unused(&t, 1, u64::MAX, &mut removed),
            fg_result::FG_OK
        );
        assert_eq!(removed, 0, "the stuck entries are left alone");
        assert_eq!(fg_active(&t, k.as_ptr(), 1), fg_result::FG_OK);
        let mut pid = core::mem::zeroed::<fg_pid>();
        pid.drop_rate = 77;
        assert_eq!(fg_pid_get(&t, &mut pid), fg_result::FG_E_BUSY);
        assert_eq!(pid.drop_rate, 77);
        assert_eq!(fg_push_load(&t, 0.5, null_mut()), fg_result::FG_E_BUSY);
        let busy = core::ffi::CStr::from_ptr(fg_strerror(fg_result::FG_E_BUSY as i32));
        assert_eq!(
            busy.to_str().unwrap(),
            "the entry stayed locked by a live holder; try again"
        );
        // Unlocked again: the failed calls changed nothing.
        for (&i, &w) in locks.iter().zip(&saved) {
            word(i).store(w, Ordering::Release);
        }
        assert_eq!(fg_get(&t, k.as_ptr(), 1, 1, &mut e), fg_result::FG_OK);
        assert_eq!(e.counter, 2);
        assert_eq!(
            fg_slot_usage(&t, s.as_ptr(), 1, 1, &mut usage),
            fg_result::FG_OK
        );
        assert_eq!(usage, 1);
        assert_eq!(fg_pid_get(&t, &mut pid), fg_result::FG_OK);
        assert_eq!(pid.load, 0.0);
        drop(mem);
    }
}
