//! The C API declared in `include/turbolog.h`.
//!
//! Every exported function catches panics and turns every error into a return code plus a
//! thread-local message: nothing we do may crash or hang the host.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Arc;

use crate::pipeline::config::Settings;
use crate::host::embedded::{log_stderr, Embedded, Filtered};
use crate::host::panic_guard::guarded;

pub const MODIFIED: c_int = 1;
pub const NOTOUCH: c_int = 2;
pub const ERROR: c_int = -1;
pub const ABI_VERSION: c_int = 1;

/// The opaque handle.
pub struct Handle {
    engine: Arc<Embedded>,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}


/// Runs `f`, turning a panic into `on_panic` and an error message (logged once per kind).
fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    match guarded("in the C API; the call returned its error value", log_stderr, f) {
        Ok(v) => v,
        Err(c) => {
            set_error(&format!("internal error (please report): {} at {}", c.message, c.location));
            on_panic
        }
    }
}

unsafe fn c_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, String> {
    if p.is_null() {
        return Err(format!("{what} is NULL"));
    }
    CStr::from_ptr(p).to_str().map_err(|_| format!("{what} is not valid UTF-8"))
}

fn new_handle(settings: Result<Settings, String>) -> *mut Handle {
    match settings.and_then(|s| Embedded::open(s, log_stderr)) {
        Ok(engine) => {
            set_error("");
            Box::into_raw(Box::new(Handle { engine }))
        }
        Err(e) => {
            set_error(&e);
            std::ptr::null_mut()
        }
    }
}

#[no_mangle]
pub extern "C" fn turbolog_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[no_mangle]
pub extern "C" fn turbolog_abi_version() -> c_int {
    ABI_VERSION
}

/// # Safety
/// `config_json` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn turbolog_new(config_json: *const c_char) -> *mut Handle {
    guard(std::ptr::null_mut(), || {
        let settings = if config_json.is_null() {
            Ok(Settings::default())
        } else {
            c_str(config_json, "config").and_then(|s| if s.trim().is_empty() { Ok(Settings::default()) } else { Settings::from_json(s) })
        };
        new_handle(settings)
    })
}

/// # Safety
/// `keys` and `values` point to `n` NUL-terminated strings each.
#[no_mangle]
pub unsafe extern "C" fn turbolog_new_kv(keys: *const *const c_char, values: *const *const c_char, n: usize) -> *mut Handle {
    guard(std::ptr::null_mut(), || {
        let mut pairs = Vec::with_capacity(n);
        if n > 0 && (keys.is_null() || values.is_null()) {
            return new_handle(Err("keys or values is NULL".into()));
        }
        for i in 0..n {
            let k = match c_str(*keys.add(i), "key") {
                Ok(k) => k,
                Err(e) => return new_handle(Err(e)),
            };
            let v = match c_str(*values.add(i), "value") {
                Ok(v) => v,
                Err(e) => return new_handle(Err(format!("property {k}: {e}"))),
            };
            pairs.push((k, v));
        }
        new_handle(Settings::from_pairs(pairs))
    })
}

/// # Safety
/// `t` is a live handle; `data` points to `len` readable bytes; `out_buf`/`out_len` are writable.
#[no_mangle]
pub unsafe extern "C" fn turbolog_filter(t: *mut Handle, data: *const c_void, len: usize, out_buf: *mut *mut c_void, out_len: *mut usize) -> c_int {
    guard(ERROR, || {
        if t.is_null() || out_buf.is_null() || out_len.is_null() || (data.is_null() && len > 0) {
            set_error("turbolog_filter: a NULL handle, data or output pointer");
            return ERROR;
        }
        *out_buf = std::ptr::null_mut();
        *out_len = 0;
        let input = if len == 0 { &[][..] } else { std::slice::from_raw_parts(data.cast::<u8>(), len) };
        (*t).engine.filter(input, log_stderr, |result| match result {
            Filtered::Untouched => NOTOUCH,
            Filtered::Modified(buf, _) => match buf.take() {
                Some((p, len)) => {
                    *out_buf = p;
                    *out_len = len;
                    MODIFIED
                }
                None => {
                    set_error("out of memory allocating the output buffer; records passed through untouched");
                    NOTOUCH
                }
            },
        })
    })
}

/// # Safety
/// `t` is a live handle.
#[no_mangle]
pub unsafe extern "C" fn turbolog_flush(t: *mut Handle) -> c_int {
    guard(ERROR, || {
        if t.is_null() {
            set_error("turbolog_flush: NULL handle");
            return ERROR;
        }
        match (*t).engine.flush(log_stderr) {
            Ok(()) => 0,
            Err(e) => {
                set_error(&e);
                ERROR
            }
        }
    })
}

/// # Safety
/// `buf` is NULL or was returned by `turbolog_filter`.
#[no_mangle]
pub unsafe extern "C" fn turbolog_free(buf: *mut c_void) {
    libc::free(buf)
}

/// # Safety
/// `t` is NULL or a live handle, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn turbolog_destroy(t: *mut Handle) {
    guard((), || {
        if !t.is_null() {
            let h = Box::from_raw(t);
            h.engine.finish_embedding(log_stderr);
            let _ = h.engine.flush(log_stderr);
            drop(h);
        }
    })
}

#[no_mangle]
pub extern "C" fn turbolog_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}
