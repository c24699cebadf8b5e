//! What confines the container process: capabilities, the user switch, no_new_privs, seccomp
//! and LSM labels.

pub mod caps;
pub mod labels;
pub mod seccomp;
