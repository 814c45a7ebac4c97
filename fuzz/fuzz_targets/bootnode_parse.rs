#![no_main]
//! `bootnode_parse`: see `op_p2p_core::fuzzing::bootnode_parse` for the input layout and the invariants checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| op_p2p_core::fuzzing::bootnode_parse(data));
