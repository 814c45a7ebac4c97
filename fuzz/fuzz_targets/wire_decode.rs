#![no_main]
//! `wire_decode`: see `op_p2p_core::fuzzing::wire_decode` for the input layout and the invariants checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| op_p2p_core::fuzzing::wire_decode(data));
