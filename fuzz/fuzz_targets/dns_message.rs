#![no_main]

#[path = "../dns.rs"]
mod dns;

libfuzzer_sys::fuzz_target!(|data: &[u8]| dns::message(data));
