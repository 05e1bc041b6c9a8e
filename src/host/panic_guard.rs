//! No panic crosses into the host, and none floods its log.
//!
//! Every entry point the host calls runs inside [`guarded`]. A panic there is caught; the host
//! gets the fallback value (for a filter: its records back untouched). Rust's default hook would
//! print a message and a backtrace to the host's stderr for every caught panic, so a quiet hook
//! records where it happened instead, and the guard logs each kind (source location) once,
//! counting the rest. Panics outside a guard (another Rust library in the same process) still
//! reach the hook that was there before.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

use super::embedded::{Log, LogLevel};

thread_local! {
    static IN_GUARD: Cell<u32> = const { Cell::new(0) };
    static LAST_PANIC: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// Panics caught so far, by kind (`file:line`).
static KINDS: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);
static TOTAL: AtomicU64 = AtomicU64::new(0);
static HOOK: Once = Once::new();

fn install_quiet_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_GUARD.with(Cell::get) == 0 {
                return previous(info);
            }
            let location = info.location().map_or_else(|| "unknown location".to_string(), |l| format!("{}:{}", l.file(), l.line()));
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_string());
            LAST_PANIC.with(|p| *p.borrow_mut() = Some((location, message)));
        }));
    });
}

/// What a caught panic was, for the caller's own error message.
#[derive(Clone, Debug)]
pub struct Caught {
    pub location: String,
    pub message: String,
    /// How many panics of this kind were caught, this one included.
    pub occurrences: u64,
}

/// Runs `f`; a panic becomes `Err` and is logged through `log` the first time its kind is seen
/// (`what` says what was being done and what the host gets instead).
pub fn guarded<T>(what: &str, log: Log, f: impl FnOnce() -> T) -> Result<T, Caught> {
    install_quiet_hook();
    IN_GUARD.with(|g| g.set(g.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    IN_GUARD.with(|g| g.set(g.get() - 1));
    let payload = match result {
        Ok(v) => return Ok(v),
        Err(payload) => payload,
    };
    let (location, message) = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| {
        let m = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned());
        ("unknown location".to_string(), m.unwrap_or_else(|| "panic".to_string()))
    });
    drop(payload);
    TOTAL.fetch_add(1, Ordering::Relaxed);
    let occurrences = {
        let mut kinds = KINDS.lock().unwrap_or_else(|p| p.into_inner());
        let n = kinds.get_or_insert_with(HashMap::new).entry(location.clone()).or_insert(0);
        *n += 1;
        *n
    };
    if occurrences == 1 {
        log(
            LogLevel::Error,
            &format!(
                "internal error {what}: {message} (at {location}); further errors of this kind are counted, not logged. \
                 Please report it with this line"
            ),
        );
    }
    Err(Caught { location, message, occurrences })
}

/// Panics caught in this process so far, all kinds together.
pub fn caught_total() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

/// Panics caught so far, by kind (`file:line` → count), sorted by location.
pub fn caught_by_kind() -> Vec<(String, u64)> {
    let kinds = KINDS.lock().unwrap_or_else(|p| p.into_inner());
    let mut v: Vec<(String, u64)> = kinds.iter().flatten().map(|(k, n)| (k.clone(), *n)).collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    static LOGGED: AtomicUsize = AtomicUsize::new(0);
    static LOGGED_TEXT: Mutex<String> = Mutex::new(String::new());

    fn counting_log(_: LogLevel, msg: &str) {
        LOGGED.fetch_add(1, Ordering::SeqCst);
        *LOGGED_TEXT.lock().unwrap() = msg.to_string();
    }

    fn boom(i: usize) -> usize {
        let s = "usér";
        s[..3].len() + i // a byte offset inside 'é', the class the hardening issue found
    }

    #[test]
    fn each_kind_is_logged_once_and_counted() {
        let before = caught_total();
        for i in 0..50 {
            let r = guarded("while testing; nothing happens instead", counting_log, || boom(i));
            let c = r.unwrap_err();
            assert_eq!(c.occurrences, i as u64 + 1);
            assert!(c.location.contains("panic_guard.rs"), "{}", c.location);
            assert!(c.message.contains("char boundary"), "{}", c.message);
        }
        assert_eq!(LOGGED.load(Ordering::SeqCst), 1, "one log line for 50 panics of one kind");
        let text = LOGGED_TEXT.lock().unwrap().clone();
        assert!(text.contains("char boundary") && text.contains("counted, not logged"), "{text}");
        assert!(caught_total() >= before + 50);
        assert!(caught_by_kind().iter().any(|(k, n)| k.contains("panic_guard.rs") && *n == 50));
        // a value passes through when nothing panics
        assert_eq!(guarded("x", counting_log, || 7).unwrap(), 7);
    }
}
