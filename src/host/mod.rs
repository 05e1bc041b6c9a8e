//! Who calls the engine from inside another process: the C API and the Fluent Bit plugin.
//!
//! [`config`] is the one property table; [`embedded`] is the engine shared by a process's plugin
//! instances; [`records`] and [`msgpack`] walk and tag the host's record buffers. Depends on
//! `store` and `detect`; nothing in the crate depends on it.

pub mod c_api;
pub mod config;
pub mod embedded;
pub mod fluent_bit;
pub mod msgpack;
pub mod ndjson;
pub mod out_buf;
pub mod panic_guard;
pub mod record_fields;
pub mod records;
