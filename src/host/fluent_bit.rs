//! The native Fluent Bit filter plugin: `fluent-bit -e /path/flb-filter_turbolog.so`.
//!
//! Fluent Bit loads the library and copies the exported `filter_turbolog_plugin` struct (its
//! layout is stable from v3.2 to v5.x; see `../shared/notes/fluent-bit-filter-abi.md`). Host
//! functions are resolved with `dlsym(RTLD_DEFAULT, …)` in `cb_init`, never called lazily: a
//! missing one would kill the host. Every callback catches panics; a failure in `cb_filter`
//! passes the records through untouched. State lives in the instance context, not in globals,
//! so a hot reload starts clean.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::Arc;

use once_cell::sync::OnceCell;

use crate::pipeline::config::{Settings, PROPERTIES};
use crate::host::embedded::{Embedded, Filtered, LogLevel};
use crate::host::panic_guard::{caught_total, guarded};

pub const FLB_FILTER_MODIFIED: c_int = 1;
pub const FLB_FILTER_NOTOUCH: c_int = 2;
const FLB_EVENT_TYPE_LOGS: c_int = 1;

static NAME: &[u8] = b"turbolog\0";
static DESCRIPTION: &[u8] = b"Log anomaly detection: scores every record and tags anomalies\0";

pub type InitCb = unsafe extern "C" fn(*mut c_void, *mut c_void, *mut c_void) -> c_int;
pub type FilterCb = unsafe extern "C" fn(
    *const c_void,
    usize,
    *const c_char,
    c_int,
    *mut *mut c_void,
    *mut usize,
    *mut c_void,
    *mut c_void,
    *mut c_void,
    *mut c_void,
) -> c_int;
pub type ExitCb = unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int;

/// Mirror of `struct flb_filter_plugin` (88 bytes on 64-bit).
#[repr(C)]
pub struct FlbFilterPlugin {
    event_type: c_int,
    flags: c_int,
    name: *const c_char,
    description: *const c_char,
    config_map: *mut c_void,
    cb_pre_run: Option<InitCb>,
    cb_init: Option<InitCb>,
    cb_filter: Option<FilterCb>,
    cb_exit: Option<ExitCb>,
    cb_notification: Option<InitCb>,
    head: [*mut c_void; 2],
}

impl FlbFilterPlugin {
    /// A log filter named `name` (both strings NUL-terminated); used by `filter_turbolog_plugin`
    /// and by the benchmark's one-field filter (`examples/flb_floor.rs`).
    pub const fn logs(name: &'static [u8], description: &'static [u8], init: InitCb, filter: FilterCb, exit: ExitCb) -> FlbFilterPlugin {
        FlbFilterPlugin {
            event_type: FLB_EVENT_TYPE_LOGS,
            flags: 0,
            name: name.as_ptr() as *const c_char,
            description: description.as_ptr() as *const c_char,
            config_map: std::ptr::null_mut(),
            cb_pre_run: None,
            cb_init: Some(init),
            cb_filter: Some(filter),
            cb_exit: Some(exit),
            cb_notification: None,
            head: [std::ptr::null_mut(); 2],
        }
    }
}

/// The symbol Fluent Bit looks up: `filter_<name>_plugin`.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut filter_turbolog_plugin: FlbFilterPlugin = FlbFilterPlugin::logs(NAME, DESCRIPTION, cb_init, cb_filter, cb_exit);

type SetContext = unsafe extern "C" fn(*mut c_void, *mut c_void);
type GetProperty = unsafe extern "C" fn(*const c_char, *mut c_void) -> *const c_char;
type LogPrint = unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, ...);

struct Host {
    set_context: SetContext,
    get_property: Option<GetProperty>,
    log_print: Option<LogPrint>,
}

static HOST: OnceCell<Host> = OnceCell::new();

unsafe fn symbol(name: &[u8]) -> *mut c_void {
    libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr() as *const c_char)
}

fn host() -> Option<&'static Host> {
    HOST.get_or_try_init(|| unsafe {
        let set_context = symbol(b"flb_filter_set_context\0");
        if set_context.is_null() {
            return Err(());
        }
        let get_property = symbol(b"flb_filter_get_property\0");
        let log_print = symbol(b"flb_log_print\0");
        Ok(Host {
            set_context: std::mem::transmute::<*mut c_void, SetContext>(set_context),
            get_property: (!get_property.is_null()).then(|| std::mem::transmute::<*mut c_void, GetProperty>(get_property)),
            log_print: (!log_print.is_null()).then(|| std::mem::transmute::<*mut c_void, LogPrint>(log_print)),
        })
    })
    .ok()
}

/// Logs through Fluent Bit's logger, prefixed like its own plugins' lines.
fn flb_log(level: LogLevel, msg: &str) {
    let line = CString::new(format!("[filter:turbolog] {}", msg.replace('\0', " "))).unwrap_or_default();
    match host().and_then(|h| h.log_print) {
        // SAFETY: flb_log_print(int, const char *file, int line, const char *fmt, ...) with "%s".
        Some(print) => unsafe { print(level as c_int, b"turbolog\0".as_ptr().cast(), 0, b"%s\0".as_ptr().cast(), line.as_ptr()) },
        None => eprintln!("{}", line.to_string_lossy()),
    }
}

struct Context {
    engine: Arc<Embedded>,
}

// Offsets in `struct flb_filter_instance` (64-bit, FLB_HAVE_REGEX, v3.2.0–v5.1.1): `p` (the
// plugin) at 96, `properties` (struct mk_list) at 104. Checked before use: `p->name` must be
// our own name pointer, or we fall back to asking for known properties only.
const INS_PLUGIN_OFFSET: usize = 96;
const INS_PROPERTIES_OFFSET: usize = 104;
const KV_HEAD_OFFSET: usize = 16;

/// Every property set on the instance, as (key, value).
unsafe fn instance_properties(ins: *mut c_void) -> Result<Vec<(String, String)>, String> {
    let base = ins as *const u8;
    let plugin = *(base.add(INS_PLUGIN_OFFSET) as *const *const FlbFilterPlugin);
    let layout_ok = !plugin.is_null() && (*plugin).name == NAME.as_ptr() as *const c_char;
    if !layout_ok {
        // Unknown host layout: read the properties we know, unknown ones cannot be detected.
        let Some(get) = host().and_then(|h| h.get_property) else {
            return Err("this Fluent Bit exports no flb_filter_get_property; supported hosts are v3.2 to v5.x".into());
        };
        flb_log(LogLevel::Warn, "unrecognised Fluent Bit layout: unknown properties will not be reported (supported: v3.2 to v5.x)");
        let mut out = Vec::new();
        for p in PROPERTIES {
            let key = CString::new(p.name).expect("property names have no NUL");
            let v = get(key.as_ptr(), ins);
            if !v.is_null() {
                out.push((p.name.to_string(), CStr::from_ptr(v).to_string_lossy().into_owned()));
            }
        }
        return Ok(out);
    }
    let head = base.add(INS_PROPERTIES_OFFSET) as *const *const c_void;
    let mut node = *head; // head->next
    let mut out = Vec::new();
    let mut guard = 0;
    while !node.is_null() && node != head as *const c_void && guard < 10_000 {
        let kv = (node as *const u8).sub(KV_HEAD_OFFSET);
        let key = *(kv as *const *const c_char);
        let val = *(kv.add(8) as *const *const c_char);
        if !key.is_null() {
            let v = if val.is_null() { String::new() } else { CStr::from_ptr(val).to_string_lossy().into_owned() };
            out.push((CStr::from_ptr(key).to_string_lossy().into_owned(), v));
        }
        node = *(node as *const *const c_void);
        guard += 1;
    }
    Ok(out)
}

unsafe extern "C" fn cb_init(ins: *mut c_void, _config: *mut c_void, _data: *mut c_void) -> c_int {
    let r = guarded("during init; the filter did not start", flb_log, || {
        let Some(host) = host() else {
            eprintln!("[filter:turbolog] this host exports no flb_filter_set_context: load it into Fluent Bit v3.2 to v5.x");
            return -1;
        };
        let settings = match instance_properties(ins).and_then(Settings::from_pairs) {
            Ok(s) => s,
            Err(e) => {
                flb_log(LogLevel::Error, &format!("invalid configuration: {e}"));
                return -1;
            }
        };
        let engine = match Embedded::open(settings, flb_log) {
            Ok(e) => e,
            Err(e) => {
                flb_log(LogLevel::Error, &format!("cannot start: {e}"));
                return -1;
            }
        };
        let (records, _, templates) = engine.counts();
        let s = engine.settings();
        flb_log(
            LogLevel::Info,
            &format!(
                "version {}, state_dir {}, {} templates from {} earlier records, message key {}, mode {:?}",
                env!("CARGO_PKG_VERSION"),
                s.state_dir.as_ref().map_or("(none: memory only)".to_string(), |d| d.display().to_string()),
                templates,
                records,
                s.message_keys.join(","),
                s.mode
            ),
        );
        let ctx = Box::into_raw(Box::new(Context { engine }));
        (host.set_context)(ins, ctx.cast());
        0
    });
    r.unwrap_or(-1)
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn cb_filter(
    data: *const c_void,
    bytes: usize,
    _tag: *const c_char,
    _tag_len: c_int,
    out_buf: *mut *mut c_void,
    out_bytes: *mut usize,
    _f_ins: *mut c_void,
    _i_ins: *mut c_void,
    ctx: *mut c_void,
    _config: *mut c_void,
) -> c_int {
    let r = guarded("while filtering; records passed through untouched", flb_log, || {
        if ctx.is_null() || data.is_null() || out_buf.is_null() || out_bytes.is_null() {
            return FLB_FILTER_NOTOUCH;
        }
        let ctx = &*(ctx as *const Context);
        let input = std::slice::from_raw_parts(data as *const u8, bytes);
        ctx.engine.filter(input, flb_log, |result| match result {
            Filtered::Untouched => FLB_FILTER_NOTOUCH,
            Filtered::Modified(buf, _) => match buf.take() {
                Some((p, len)) => {
                    *out_buf = p;
                    *out_bytes = len;
                    FLB_FILTER_MODIFIED
                }
                None => FLB_FILTER_NOTOUCH,
            },
        })
    });
    r.unwrap_or(FLB_FILTER_NOTOUCH)
}

unsafe extern "C" fn cb_exit(ctx: *mut c_void, _config: *mut c_void) -> c_int {
    let _ = guarded("at exit", flb_log, || {
        if ctx.is_null() {
            return;
        }
        let ctx = Box::from_raw(ctx as *mut Context);
        ctx.engine.finish_embedding(flb_log);
        ctx.engine.finish_reduce(flb_log);
        ctx.engine.finish_multiline(flb_log);
        let _ = ctx.engine.flush(flb_log); // a failure is logged inside
        let (records, anomalies, templates) = ctx.engine.counts();
        let untouched = ctx.engine.untouched_after_error();
        let panics = caught_total();
        let invalid = ctx.engine.invalid_buffers();
        let invalid = if invalid > 0 { format!(", {invalid} buffers that were not msgpack passed through") } else { String::new() };
        let no_message = ctx.engine.no_message();
        let invalid = if no_message > 0 { format!("{invalid}, {no_message} records with no message passed through unscored") } else { invalid };
        let past_limit = ctx.engine.template_limit_hits();
        let limit = if past_limit > 0 { format!(", {past_limit} records past the template limit") } else { String::new() };
        let errors = if panics > 0 { format!(", {panics} internal errors caught ({untouched} records passed through untouched)") } else { String::new() };
        flb_log(LogLevel::Info, &format!("exit: {records} records scored, {anomalies} anomalies, {templates} templates{limit}{invalid}{errors}"));
    });
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_matches_the_host_layout() {
        assert_eq!(std::mem::size_of::<FlbFilterPlugin>(), 88);
        assert_eq!(std::mem::offset_of!(FlbFilterPlugin, name), 8);
        assert_eq!(std::mem::offset_of!(FlbFilterPlugin, config_map), 24);
        assert_eq!(std::mem::offset_of!(FlbFilterPlugin, cb_init), 40);
        assert_eq!(std::mem::offset_of!(FlbFilterPlugin, cb_filter), 48);
        assert_eq!(std::mem::offset_of!(FlbFilterPlugin, cb_exit), 56);
        assert_eq!(std::mem::offset_of!(FlbFilterPlugin, head), 72);
    }
}
