//! libtensorbridge from Rust through `extern "C"`, with no crate: the
//! declarations are generated from tensorbridge.cdef by scripts/gen-rust-ffi
//! (scripts/test-ffi BUILD_DIR generates them, builds this file with plain
//! rustc and runs it).
//!
//!     scripts/gen-rust-ffi BUILD/include/tensorbridge/tensorbridge.cdef -o OUT/tensorbridge_ffi.rs
//!     TB_FFI_DIR=OUT rustc --edition 2021 examples/rust/main.rs -o OUT/rust_consumer \
//!         -L native=BUILD/src -l dylib=tensorbridge -C link-arg=-Wl,-rpath,BUILD/src
//!
//! Creates a tensor, takes a view, fills it, reads the elements back, shares
//! a Rust buffer (its deleter runs once, when the last view goes), exports a
//! view over DLPack and imports it again, and checks an error path with
//! tb_last_error. Prints what it saw; exits 1 on the first surprise.
//! Written for Rust 1.63 (Debian 12's rustc).

#[allow(non_camel_case_types, non_upper_case_globals, non_snake_case, dead_code)]
mod ffi {
    include!(concat!(env!("TB_FFI_DIR"), "/tensorbridge_ffi.rs"));
}

use std::ffi::CStr;
use std::os::raw::c_void;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

fn last_error() -> String {
    unsafe { CStr::from_ptr(ffi::tb_last_error()).to_string_lossy().into_owned() }
}

fn check(status: ffi::tb_status, what: &str) -> Result<(), String> {
    if status == ffi::TB_OK {
        return Ok(());
    }
    let name = unsafe { CStr::from_ptr(ffi::tb_status_name(status)).to_string_lossy() };
    Err(format!("{}: {}: {}", what, name, last_error()))
}

fn expect(cond: bool, what: String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what)
    }
}

fn cpu() -> ffi::DLDevice {
    ffi::DLDevice { device_type: ffi::kDLCPU, device_id: 0 }
}

fn dims(t: *const ffi::tb_tensor_t) -> (Vec<i64>, Vec<i64>) {
    unsafe {
        let n = ffi::tb_tensor_ndim(t) as usize;
        (
            std::slice::from_raw_parts(ffi::tb_tensor_shape(t), n).to_vec(),
            std::slice::from_raw_parts(ffi::tb_tensor_strides(t), n).to_vec(),
        )
    }
}

// The Rust buffer's deleter: gives the memory back to Rust, and counts.
static DELETED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn free_boxed_floats(data: *mut c_void, ctx: *mut c_void) {
    let len = ctx as usize;
    drop(Box::from_raw(ptr::slice_from_raw_parts_mut(data as *mut f32, len)));
    DELETED.fetch_add(1, Ordering::SeqCst);
}

fn run() -> Result<String, String> {
    let mut report = Vec::new();
    unsafe {
        let version = CStr::from_ptr(ffi::tb_version()).to_string_lossy().into_owned();
        let expected = format!("{}.{}.{}", ffi::TB_VERSION_MAJOR, ffi::TB_VERSION_MINOR,
                               ffi::TB_VERSION_PATCH);
        expect(version == expected,
               format!("tb_version {} but the cdef says {}", version, expected))?;
        report.push(format!("libtensorbridge {}", version));

        let f32_ = ffi::tb_dtype(ffi::kDLFloat as u8, 32);
        let f64_ = ffi::tb_dtype(ffi::kDLFloat as u8, 64);
        let dtype_name = CStr::from_ptr(ffi::tb_dtype_name(f32_)).to_string_lossy().into_owned();
        expect(dtype_name == "float32" && ffi::tb_dtype_itemsize(f32_) == 4,
               format!("tb_dtype_name(float32) = {}", dtype_name))?;

        // A 3x4 float32 tensor of zeros, its transpose (4x3), and row 1 of
        // the transpose: column 1 of the tensor.
        let shape: [i64; 2] = [3, 4];
        let mut base: *mut ffi::tb_tensor_t = ptr::null_mut();
        check(ffi::tb_tensor_zeros(f32_, 2, shape.as_ptr(), cpu(), ffi::TB_ORDER_C, &mut base),
              "tb_tensor_zeros")?;
        let mut tr: *mut ffi::tb_tensor_t = ptr::null_mut();
        check(ffi::tb_tensor_transpose(base, 0, 1, &mut tr), "tb_tensor_transpose")?;
        expect(dims(tr) == (vec![4, 3], vec![1, 4]), format!("transpose: {:?}", dims(tr)))?;
        let mut col: *mut ffi::tb_tensor_t = ptr::null_mut();
        check(ffi::tb_tensor_select(tr, 0, 1, &mut col), "tb_tensor_select")?;
        expect(dims(col) == (vec![3], vec![4]), format!("select: {:?}", dims(col)))?;
        expect(ffi::tb_tensor_shares_storage(base, col),
               "the view has its own storage".to_string())?;

        // Fill the view with 2.5 (given as a float64, converted), then read
        // the tensor back through its data pointer.
        let value: f64 = 2.5;
        check(ffi::tb_tensor_fill(col, &value as *const f64 as *const c_void, f64_),
              "tb_tensor_fill")?;
        let data = std::slice::from_raw_parts(ffi::tb_tensor_data(base) as *const f32, 12);
        for (i, x) in data.iter().enumerate() {
            let want = if i % 4 == 1 { 2.5 } else { 0.0 };
            expect(*x == want, format!("element {} is {}, not {}", i, x, want))?;
        }
        report.push(format!("zeros 3x4, column 1 filled through a view: {:?}", data));

        // Rust memory shared without copying; the library gives it back.
        let boxed: Box<[f32]> = vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0].into_boxed_slice();
        let len = boxed.len();
        let raw = Box::into_raw(boxed) as *mut f32;
        let shape2: [i64; 2] = [2, 3];
        let mut wrapped: *mut ffi::tb_tensor_t = ptr::null_mut();
        check(ffi::tb_from_array(raw as *mut c_void, 0, f32_, 2, shape2.as_ptr(), ptr::null(),
                                 cpu(), 0, Some(free_boxed_floats), len as *mut c_void,
                                 &mut wrapped), "tb_from_array")?;
        expect(ffi::tb_tensor_data(wrapped) == raw as *mut c_void,
               "tb_from_array copied".to_string())?;

        // DLPack: export x[:, ::-1] of the wrapped memory, read the struct,
        // import it back.
        let mut rev: *mut ffi::tb_tensor_t = ptr::null_mut();
        check(ffi::tb_tensor_slice(wrapped, 1, i64::MAX, i64::MIN, -1, &mut rev),
              "tb_tensor_slice")?;
        ffi::tb_tensor_release(wrapped);
        let mut managed: *mut ffi::DLManagedTensorVersioned = ptr::null_mut();
        check(ffi::tb_to_dlpack_versioned(rev, ptr::null(), &mut managed),
              "tb_to_dlpack_versioned")?;
        let m = &*managed;
        let dl = &m.dl_tensor;
        let ndim = dl.ndim as usize;
        let dl_shape = std::slice::from_raw_parts(dl.shape, ndim).to_vec();
        let dl_strides = std::slice::from_raw_parts(dl.strides, ndim).to_vec();
        expect(m.version.major == ffi::TB_DLPACK_MAJOR as u32
               && m.version.minor == ffi::TB_DLPACK_MINOR as u32,
               format!("DLPack version {}.{}", m.version.major, m.version.minor))?;
        expect(dl_shape == vec![2, 3] && dl_strides == vec![3, -1]
               && dl.dtype.code == ffi::kDLFloat as u8 && dl.dtype.bits == 32
               && dl.device.device_type == ffi::kDLCPU
               && m.flags & ffi::DLPACK_FLAG_BITMASK_READ_ONLY as u64 == 0,
               format!("DLTensor shape {:?} strides {:?}", dl_shape, dl_strides))?;
        let first = *(dl.data as *const f32);
        expect(first == 3.0, format!("DLTensor element 0 is {}", first))?;
        let mut back: *mut ffi::tb_tensor_t = ptr::null_mut();
        check(ffi::tb_from_dlpack_versioned(managed, ptr::null(), &mut back),
              "tb_from_dlpack_versioned")?;
        expect(ffi::tb_tensor_data(back) == ffi::tb_tensor_data(rev)
               && dims(back) == (vec![2, 3], vec![3, -1]),
               format!("imported: {:?}", dims(back)))?;
        report.push(format!("Rust buffer as a tensor, x[:, ::-1] over DLPack {}.{}: \
                             shape {:?} strides {:?}",
                            m.version.major, m.version.minor, dl_shape, dl_strides));
        ffi::tb_tensor_release(rev);
        expect(DELETED.load(Ordering::SeqCst) == 0, "deleted while imported".to_string())?;
        ffi::tb_tensor_release(back);
        expect(DELETED.load(Ordering::SeqCst) == 1,
               format!("the deleter ran {} times", DELETED.load(Ordering::SeqCst)))?;

        // The error path: a status, and a message naming the field.
        let mut none: *mut ffi::tb_tensor_t = ptr::null_mut();
        let status = ffi::tb_tensor_transpose(base, 0, 7, &mut none);
        let message = last_error();
        expect(status == ffi::TB_ERR_INDEX && message.contains("dim = 7") && none.is_null(),
               format!("transpose(0, 7): status {}, {:?}", status, message))?;
        let mut dtype = ffi::DLDataType { code: 0, bits: 0, lanes: 0 };
        let status = ffi::tb_dtype_from_name(b"float33\0".as_ptr() as *const _, &mut dtype);
        expect(status == ffi::TB_ERR_DTYPE && last_error().contains("float33"),
               format!("tb_dtype_from_name(float33): {} {:?}", status, last_error()))?;
        report.push(format!("refused as expected: {:?}", message));

        for t in [col, tr, base] {
            ffi::tb_tensor_release(t);
        }
    }
    Ok(report.join("\n"))
}

fn main() {
    match run() {
        Ok(report) => println!("{}", report),
        Err(e) => {
            eprintln!("rust consumer: FAILED: {}", e);
            std::process::exit(1);
        }
    }
}
