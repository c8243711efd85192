//! Straightening a scan fed askew. The detection model finds text lines as axis-aligned
//! regions: on a page tilted by two degrees a line of 60 characters climbs by half a line
//! height, neighbouring lines merge into one region and the recognizer reads two half-lines
//! at once. The tilt is found by the projection profile (rows of ink are sharpest when the
//! shear matches the lines' slope), on a page downsampled to about 400 pixels across so that
//! it costs milliseconds, and the page is turned back before detection.

use super::ocr::Gray;

/// The largest tilt looked for, in degrees; more is a page put on the glass at an angle, which
/// is rare and better rescanned.
const MAX_TILT: f32 = 6.0;
/// Below this the lines do not merge and turning would only blur the page.
const MIN_TILT: f32 = 0.3;

/// The page turned so that its lines run level, or none when they already do.
pub(super) fn straightened(page: &Gray) -> Option<Gray> {
    let tilt = tilt_degrees(page);
    (tilt.abs() >= MIN_TILT).then(|| rotated(page, tilt))
}

/// How far the lines slope down to the right, in degrees (negative: up to the right).
pub(super) fn tilt_degrees(page: &Gray) -> f32 {
    let step = (page.width / 400).max(1);
    let ink: Vec<(f32, f32)> = (0..page.height / step)
        .flat_map(|y| (0..page.width / step).map(move |x| (x, y)))
        .filter(|&(x, y)| page.pixels[y * step * page.width + x * step] < 128)
        .map(|(x, y)| (x as f32, y as f32))
        .collect();
    if ink.is_empty() {
        return 0.0;
    }
    let rows = page.height / step + 1;
    let sharpness = |degrees: f32| {
        let slope = degrees.to_radians().tan();
        let mut profile = vec![0u32; rows * 2];
        for &(x, y) in &ink {
            let r = (y - x * slope).round() as isize + rows as isize / 2;
            if let Some(bin) = usize::try_from(r).ok().and_then(|r| profile.get_mut(r)) {
                *bin += 1;
            }
        }
        profile.iter().map(|&c| u64::from(c) * u64::from(c)).sum::<u64>()
    };
    let best_of = |from: f32, to: f32, by: f32| {
        let n = ((to - from) / by).round() as i32;
        (0..=n).map(|i| from + i as f32 * by).max_by_key(|&d| sharpness(d)).unwrap_or(0.0)
    };
    let coarse = best_of(-MAX_TILT, MAX_TILT, 0.25);
    best_of(coarse - 0.25, coarse + 0.25, 0.05)
}

/// The page turned by `degrees` about its centre (positive: what sloped down to the right is
/// level), bilinear, the same size, white where nothing of the page comes in.
pub(super) fn rotated(page: &Gray, degrees: f32) -> Gray {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (w, h) = (page.width, page.height);
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let at = |x: isize, y: isize| -> f32 {
        if x < 0 || y < 0 || x as usize >= w || y as usize >= h {
            255.0
        } else {
            f32::from(page.pixels[y as usize * w + x as usize])
        }
    };
    let mut pixels = vec![255u8; w * h];
    for y in 0..h {
        let dy = y as f32 - cy;
        for x in 0..w {
            let dx = x as f32 - cx;
            let sx = cx + dx * cos - dy * sin;
            let sy = cy + dx * sin + dy * cos;
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as isize, y0 as isize);
            let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx;
            let bottom = at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx;
            pixels[y * w + x] = (top * (1.0 - fy) + bottom * fy).round() as u8;
        }
    }
    Gray { width: w, height: h, pixels }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A white page with dark bars (lines of text) sloping by `degrees`.
    fn page_with_lines(degrees: f32) -> Gray {
        let (w, h) = (1200, 1600);
        let slope = degrees.to_radians().tan();
        let mut pixels = vec![255u8; w * h];
        for line in 0..20 {
            let top = 200.0 + line as f32 * 60.0;
            for x in 100..1100 {
                let y0 = (top + (x as f32 - 600.0) * slope) as usize;
                for y in y0..y0 + 20 {
                    pixels[y * w + x] = 20;
                }
            }
        }
        Gray { width: w, height: h, pixels }
    }

    #[test]
    fn a_tilt_is_measured_and_turned_back() {
        for tilt in [-3.0f32, -1.2, 2.0, 4.5] {
            let page = page_with_lines(tilt);
            let found = tilt_degrees(&page);
            assert!((found - tilt).abs() <= 0.1, "tilted {tilt}°, found {found}°");
            let level = straightened(&page).expect("a tilted page is turned");
            assert!(tilt_degrees(&level).abs() < MIN_TILT, "turned back from {tilt}°");
        }
        assert!(straightened(&page_with_lines(0.0)).is_none(), "a level page is left as it is");
        let blank = Gray { width: 100, height: 100, pixels: vec![255; 10_000] };
        assert_eq!(tilt_degrees(&blank), 0.0);
    }
}
