//! Sealing the MasterKey (DESIGN §3). Only the development `file` seal exists so far: Shamir and auto-unseal
//! through external providers arrive with the root-of-trust work.

pub mod file;

pub use file::FileSeal;
