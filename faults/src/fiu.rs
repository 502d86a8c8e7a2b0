//! libfiu, reached at run time: the child runs with `fiu_posix_preload.so` preloaded, which
//! wraps libc's I/O calls and asks libfiu before each one whether it should fail. Its control
//! functions are looked up with `dlsym` (no link-time dependency, so crates build without
//! libfiu; the tests skip when it is not installed).

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

/// The preload library of Debian's `libfiu0` package.
pub const PRELOAD: &str = "/usr/lib/fiu/fiu_posix_preload.so";

/// The libfiu failure points counted and failed: every call that changes a file, opens one,
/// or reads one. (Rust's std calls `open64`, `write`/`writev`, `pwrite64`, `fsync`,
/// `fdatasync`, `rename`, `unlink`, `ftruncate64`, `read`, `pread64`; the preload names them
/// as below.)
pub const POINTS: &[&CStr] = &[
    c"posix/io/oc/open",
    c"posix/io/rw/write",
    c"posix/io/rw/writev",
    c"posix/io/rw/pwrite",
    c"posix/io/rw/pwritev",
    c"posix/io/sync/fsync",
    c"posix/io/sync/fdatasync",
    c"posix/io/dir/rename",
    c"posix/io/dir/unlink",
    c"posix/io/rw/ftruncate",
    c"posix/io/rw/read",
    c"posix/io/rw/pread",
];

type ExternalCb =
    unsafe extern "C" fn(*const c_char, *mut c_int, *mut *mut c_void, *mut c_uint) -> c_int;
type EnableExternal =
    unsafe extern "C" fn(*const c_char, c_int, *mut c_void, c_uint, ExternalCb) -> c_int;
type Disable = unsafe extern "C" fn(*const c_char) -> c_int;
type Init = unsafe extern "C" fn(c_uint) -> c_int;

unsafe extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

/// Which call of a window fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fail {
    /// None: count the calls.
    Never,
    /// The call with this index (0-based) among the window's calls.
    Nth(u64),
    /// Each call with probability `per_million` / 1,000,000, from a seeded generator.
    Random {
        /// The generator's seed (non-zero).
        seed: u64,
        /// The chance of each call failing, per million.
        per_million: u64,
    },
}

/// What happened in a window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Window {
    /// How many calls were made (of [`POINTS`]).
    pub calls: u64,
    /// The calls that were failed: index in the window and failure point.
    pub failed: Vec<(u64, String)>,
    /// With [`Fail::Never`]: the failure point of each call, in order.
    pub trace: Vec<String>,
}

impl Window {
    /// Whether one of the failed calls was an fsync or fdatasync.
    pub fn failed_a_sync(&self) -> bool {
        self.failed.iter().any(|(_, p)| p.contains("/sync/"))
    }
}

// The callback's state: one window at a time (serialised by `LOCK`).
static MODE: AtomicUsize = AtomicUsize::new(0); // 0 off, 1 count, 2 nth, 3 random
static TARGET: AtomicU64 = AtomicU64::new(0);
static COUNT: AtomicU64 = AtomicU64::new(0);
static RNG: AtomicU64 = AtomicU64::new(1);
static ERRNO: AtomicI64 = AtomicI64::new(5);
static FAILED: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
static TRACE: Mutex<Vec<String>> = Mutex::new(Vec::new());
static LOCK: Mutex<()> = Mutex::new(());

/// The decision for each call of a failure point, made by libfiu's preload wrappers.
///
/// # Safety
/// Called by libfiu with a valid NUL-terminated `name` and valid out-pointers.
unsafe extern "C" fn decide(
    name: *const c_char,
    _failnum: *mut c_int,
    failinfo: *mut *mut c_void,
    _flags: *mut c_uint,
) -> c_int {
    let mode = MODE.load(Ordering::Acquire);
    if mode == 0 {
        return 0;
    }
    let index = COUNT.fetch_add(1, Ordering::AcqRel);
    if mode == 1 {
        // SAFETY: libfiu passes the failure point's name, a valid C string.
        let point = unsafe { CStr::from_ptr(name) }
            .to_string_lossy()
            .into_owned();
        if let Ok(mut trace) = TRACE.lock() {
            trace.push(point);
        }
        return 0;
    }
    let fail = match mode {
        2 => index == TARGET.load(Ordering::Acquire),
        3 => {
            let mut x = RNG.load(Ordering::Acquire);
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            RNG.store(x, Ordering::Release);
            x % 1_000_000 < TARGET.load(Ordering::Acquire)
        }
        _ => false,
    };
    if !fail {
        return 0;
    }
    // SAFETY: libfiu passes the failure point's name, a valid C string.
    let point = unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned();
    if let Ok(mut failed) = FAILED.lock() {
        failed.push((index, point));
    }
    // The preload sets errno to the failinfo pointer's value.
    // SAFETY: libfiu passes a valid pointer to the failinfo it will use.
    unsafe { *failinfo = ERRNO.load(Ordering::Acquire) as usize as *mut c_void };
    1
}

/// libfiu in this process (present only when the preload is).
pub struct Fiu {
    enable_external: EnableExternal,
    disable: Disable,
}

fn symbol(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: RTLD_DEFAULT (null) searches the loaded objects; `name` is a C string.
    let sym = unsafe { dlsym(std::ptr::null_mut(), name.as_ptr()) };
    (!sym.is_null()).then_some(sym)
}

impl Fiu {
    /// libfiu's control functions, if libfiu is loaded (by the preload).
    pub fn get() -> Option<Fiu> {
        let init = symbol(c"fiu_init")?;
        let enable = symbol(c"fiu_enable_external")?;
        let disable = symbol(c"fiu_disable")?;
        // SAFETY: these are libfiu's functions with the signatures of fiu.h / fiu-control.h.
        let (init, enable_external, disable) = unsafe {
            (
                std::mem::transmute::<*mut c_void, Init>(init),
                std::mem::transmute::<*mut c_void, EnableExternal>(enable),
                std::mem::transmute::<*mut c_void, Disable>(disable),
            )
        };
        // SAFETY: fiu_init may be called more than once.
        unsafe { init(0) };
        Some(Fiu {
            enable_external,
            disable,
        })
    }

    /// Runs `f` with the calls of [`POINTS`] counted and failed as `fail` says, with `errno`.
    pub fn window<R>(&self, fail: Fail, errno: i32, f: impl FnOnce() -> R) -> (R, Window) {
        let _one = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        COUNT.store(0, Ordering::Release);
        ERRNO.store(i64::from(errno), Ordering::Release);
        if let Ok(mut failed) = FAILED.lock() {
            failed.clear();
        }
        if let Ok(mut trace) = TRACE.lock() {
            trace.clear();
        }
        let mode = match fail {
            Fail::Never => 1,
            Fail::Nth(n) => {
                TARGET.store(n, Ordering::Release);
                2
            }
            Fail::Random { seed, per_million } => {
                RNG.store(seed.max(1), Ordering::Release);
                TARGET.store(per_million, Ordering::Release);
                3
            }
        };
        for point in POINTS {
            // SAFETY: a C string and our callback of the type libfiu expects; failinfo is set
            // by the callback.
            unsafe { (self.enable_external)(point.as_ptr(), 1, std::ptr::null_mut(), 0, decide) };
        }
        MODE.store(mode, Ordering::Release);
        let result = f();
        MODE.store(0, Ordering::Release);
        for point in POINTS {
            // SAFETY: a C string naming a point enabled above.
            unsafe { (self.disable)(point.as_ptr()) };
        }
        let window = Window {
            calls: COUNT.load(Ordering::Acquire),
            failed: FAILED.lock().map(|f| f.clone()).unwrap_or_default(),
            trace: TRACE.lock().map(|t| t.clone()).unwrap_or_default(),
        };
        (result, window)
    }
}
