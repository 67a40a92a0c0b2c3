//! JPEG/PNG decoding of encoded frames and stills: never a panic, a decoded image is within the size limits and
//! its buffer matches its size.
#![no_main]

use facepay_core::vision::frame::{MAX_SIDE, MIN_SIDE, decode_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = decode_bytes(data) {
        assert!((MIN_SIDE..=MAX_SIDE).contains(&img.width), "width {}", img.width);
        assert!((MIN_SIDE..=MAX_SIDE).contains(&img.height), "height {}", img.height);
        assert_eq!(img.data.len(), img.width as usize * img.height as usize * 3);
    }
});
