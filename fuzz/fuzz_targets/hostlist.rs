//! Exim host-list parsing (`HostList::from_str`) and matching, on any text.
//!
//! Input: 1 byte picks the peer address, the rest is the list. Properties: no panic; a list
//! that parses displays as its text and parses again to an equal list; matching never panics,
//! with and without a peer name.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use tlsresume_core::HostList;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(list) = text.parse::<HostList>() else {
        return;
    };
    let again: HostList = list.to_string().parse().expect("a displayed list parses");
    assert_eq!(again, list);
    let ips = [
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, pick)),
        IpAddr::V4(Ipv4Addr::new(pick, 51, 100, 1)),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(pick))),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    for ip in ips {
        let _ = list.matches(ip, None);
        let _ = list.matches(ip, Some("mx.example.net"));
        let _ = list.matches(ip, Some(text));
    }
    let _ = list.is_empty();
});
