//! The command line: `run`, `crd`, `plan`, `apply`, `delete`, `import`, and with the `emulator`
//! feature `demo` and `emulator`.

pub mod apply;
mod command;
pub mod converge;
pub mod delete;
#[cfg(feature = "emulator")]
pub mod demo;
#[cfg(feature = "emulator")]
mod demo_import;
#[cfg(feature = "emulator")]
pub mod embedded;
pub mod import;
pub mod import_estate;
pub mod inputs;
pub mod manifests;
pub mod plan;

pub use command::{Cli, Command, CrdArgs, OutputFormat, main};
