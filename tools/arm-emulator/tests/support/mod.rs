//! Support code shared by the emulator crate's integration tests (`conformance.rs`,
//! `semantics.rs`, `deployments.rs`, each including it with `mod support;`): the Azure contract
//! and its Swagger validator (`contract`), and the emulator driven over real HTTP (`http`).
// Each test file is a crate of its own that uses only part of this module; what one of them
// leaves unused would otherwise warn as dead code there.
#![allow(dead_code)]

pub mod contract;
pub mod http;
