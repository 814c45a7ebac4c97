#![no_main]
//! `enr_opstack`: see `op_p2p_core::fuzzing::enr_opstack` for the input layout and the invariants checked.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| op_p2p_core::fuzzing::enr_opstack(data));
