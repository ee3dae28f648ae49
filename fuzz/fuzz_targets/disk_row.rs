//! The on-disk cache reading rows another writer left in the SQLite file: any entry bytes,
//! any expiry, any column type (SQLite keeps whatever type is written).
//!
//! Input: a selector byte (column types; bit 6: the entry's checksum is fixed up, as in the
//! `cache_entry` target), 8 bytes of expiry (microseconds), 4 bytes of clock
//! offset, then the entry bytes. Properties: no panic; a lookup either returns an entry that
//! re-encodes to the stored bytes, or nothing; a row that did not decode is never destroyed by
//! a read (another process, or a newer version, may read it: it goes at its expiry, by the size
//! bound, or when a writer replaces it), so `get` leaves it in the file and a read after
//! `get_unexpired` changes nothing more. The same bytes go into the EHLO table too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlsresume_core::{CacheEntry, SessionStore};
use tlsresume_smtp::ehlo::{EhloEntry, EhloStore};
use tlsresume_fuzz::disk::{ehlo_key, fixture, key, value};
use tlsresume_fuzz::take_time;

fuzz_target!(|data: &[u8]| {
    let Some(fx) = fixture() else {
        panic!("cannot open the on-disk cache fixture");
    };
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some((expiry, rest)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let (now, entry_bytes) = take_time(rest);
    let mut entry_bytes = entry_bytes.to_vec();
    if selector & 0x40 != 0 {
        tlsresume_fuzz::fix_checksum(&mut entry_bytes);
    }
    let entry_bytes = entry_bytes.as_slice();
    let expiry = i64::from_be_bytes(*expiry);
    let entry = value(selector % 5, entry_bytes, expiry);
    // Selector 0: a BLOB entry and an INTEGER expiry, as the store writes them.
    let expires_at = value((selector & 0x3f) / 5 + 1, &expiry.to_be_bytes(), expiry);
    ehlo(fx, selector, entry.clone(), expires_at.clone(), entry_bytes);
    if !fx.write_row(entry, expires_at) {
        return;
    }
    let decodes = selector.is_multiple_of(5) && CacheEntry::decode(entry_bytes).is_ok();
    let found = if selector & 0x80 == 0 {
        fx.store.get_unexpired(&key(), now)
    } else {
        fx.store.get(&key())
    };
    match found {
        Ok(Some(entry)) => {
            assert!(decodes, "an entry that does not decode was returned");
            assert_eq!(entry.encode(), entry_bytes);
        }
        Ok(None) => {}
        Err(e) => {
            // An error is acceptable only if it leaves no stuck row behind: the next lookup
            // must not fail the same way forever.
            let again = fx.store.get(&key());
            assert!(again.is_ok(), "row stays unreadable: {e} / {again:?}");
        }
    }
    if !decodes {
        // A row whose entry does not decode is left where it is: `get` never removes it, and
        // `get_unexpired` removes it only as expired, so a second read changes nothing.
        if selector & 0x80 != 0 {
            assert!(fx.row_present(), "an unreadable row was destroyed by a read");
        }
        let present = fx.row_present();
        let _ = fx.store.get(&key());
        assert_eq!(
            fx.row_present(),
            present,
            "a second read of an unreadable row changed the file"
        );
    }
});

/// The same row in the EHLO table (same file): the same properties.
fn ehlo(
    fx: &tlsresume_fuzz::disk::DiskFixture,
    selector: u8,
    entry: rusqlite::types::Value,
    stored_at: rusqlite::types::Value,
    entry_bytes: &[u8],
) {
    if !fx.write_ehlo_row(entry, stored_at) {
        return;
    }
    let decodes = selector.is_multiple_of(5) && EhloEntry::decode(entry_bytes).is_ok();
    match fx.store.get_ehlo(&ehlo_key()) {
        Ok(Some(entry)) => {
            assert!(decodes, "an EHLO entry that does not decode was returned");
            assert_eq!(entry.encode(), entry_bytes);
        }
        Ok(None) => {}
        Err(e) => {
            let again = fx.store.get_ehlo(&ehlo_key());
            assert!(again.is_ok(), "EHLO row stays unreadable: {e} / {again:?}");
        }
    }
    if !decodes {
        // An EHLO row that does not decode is left in place by a read (expiry is the EHLO
        // cache's decision, not the store's).
        assert!(
            fx.ehlo_row_present(),
            "an unreadable EHLO row was destroyed by a read"
        );
    }
}
