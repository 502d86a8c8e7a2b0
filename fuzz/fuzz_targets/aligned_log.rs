#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| flumedb_fuzz::aligned_log(data));
