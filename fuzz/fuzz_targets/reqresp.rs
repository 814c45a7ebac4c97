#![no_main]
//! `reqresp`: see `op_p2p_core::fuzzing::reqresp` for the input layout and the invariants checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| op_p2p_core::fuzzing::reqresp(data));
