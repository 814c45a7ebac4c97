#![no_main]
//! `message_id`: see `op_p2p_core::fuzzing::message_id` for the input layout and the invariants checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| op_p2p_core::fuzzing::message_id(data));
