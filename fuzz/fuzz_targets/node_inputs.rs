#![no_main]
//! `node_inputs`: see `op_p2p_core::fuzzing::node_inputs` for the input layout and the invariants checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| op_p2p_core::fuzzing::node_inputs(data));
