#![no_main]
//! `admin_request`: see `op_p2p_core::fuzzing::admin_request` for the input layout and the invariants checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| op_p2p_core::fuzzing::admin_request(data));
