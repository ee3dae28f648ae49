//! A delayed point-to-point link between two network namespaces, for measuring round trips:
//! a TUN device `dl0` in each, every IP packet relayed from one to the other after a fixed
//! delay, in order, nothing dropped or reordered. Unlike a userspace TCP proxy it carries
//! whole packets, so a SYN's data (TCP Fast Open) arrives as it was sent; it stands in for
//! `tc netem` where the kernel has no `sch_netem`.
//!
//! Usage (root): `delay_link NS_A NS_B DELAY_MS`, with the namespaces made by `ip netns add`.
//! It prints `ready` once both devices exist (then give them addresses and bring them up) and
//! relays until killed. See scripts/fastopen-delay.

mod ffi;

use std::fs::File;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The device name in each namespace.
const DEVICE: &str = "dl0";

/// Relays packets read from `from` to `to`, each `delay` after it was read.
fn relay(mut from: File, mut to: File, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = from.read(&mut buf) {
            if tx
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    });
    thread::spawn(move || {
        for (due, packet) in rx {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            // A packet the far side cannot take yet (device down) is lost, as on a wire.
            let _ = to.write(&packet);
        }
    });
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [a, b, delay] = args.as_slice() else {
        return Err("usage: delay_link NS_A NS_B DELAY_MS".into());
    };
    let delay = Duration::from_millis(delay.parse()?);
    // Each device is made in its namespace; the files work from anywhere after.
    ffi::enter_netns(a)?;
    let tun_a = ffi::tun(DEVICE)?;
    ffi::enter_netns(b)?;
    let tun_b = ffi::tun(DEVICE)?;
    relay(tun_a.try_clone()?, tun_b.try_clone()?, delay);
    relay(tun_b, tun_a, delay);
    println!("ready");
    std::io::stdout().flush()?;
    loop {
        thread::park();
    }
}
