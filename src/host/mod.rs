//! Who drives the pipeline from inside another process: the C API and the Fluent Bit plugin.
//!
//! [`embedded`] is the pipeline a process's plugin instances share; [`fluent_bit`] and [`c_api`]
//! are the two ABIs over it. May use `pipeline` and `codec`; nothing in the crate depends on it.

pub mod c_api;
pub mod embedded;
pub mod fluent_bit;
pub mod out_buf;
pub mod panic_guard;
