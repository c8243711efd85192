//! Procedure code families whose members exclude each other: one coronary angiography by its
//! technique (88.55–88.57), one count of vessels treated (00.40–00.43), one count of stents
//! inserted (00.45–00.48). Shared by mining, validation and Code Also.

/// Whether `code` is of any of the families (code prefixes) given: a policy's lists
/// (`String`) and the code's own constants (`&str`) alike.
#[inline]
pub fn in_families<S: AsRef<str>>(code: &str, families: &[S]) -> bool {
    families.iter().any(|f| code.starts_with(f.as_ref()))
}

/// Same procedure family: angiography by any catheter count, or counts of vessels/stents.
pub fn same_family(a: &str, b: &str) -> bool {
    let fam = |c: &str| -> &str {
        if c.starts_with("88.55") || c.starts_with("88.56") || c.starts_with("88.57") {
            "cag"
        } else if ["00.40", "00.41", "00.42", "00.43"].iter().any(|p| c.starts_with(p)) {
            "vessels"
        } else if ["00.45", "00.46", "00.47", "00.48"].iter().any(|p| c.starts_with(p)) {
            "stents"
        } else if ["96.70", "96.71", "96.72"].iter().any(|p| c.starts_with(p)) {
            // One invasive ventilation by its duration.
            "ventilation"
        } else if c.starts_with("99.10") {
            // One thrombolysis by its route.
            "thrombolysis"
        } else if c.starts_with("93.90") {
            // One non-invasive ventilation by its mode.
            "niv"
        } else if ["99.61", "99.62"].iter().any(|p| c.starts_with(p)) {
            // A shock is a cardioversion or a defibrillation, not both.
            "shock"
        } else {
            ""
        }
    };
    let (fa, fb) = (fam(a), fam(b));
    !fa.is_empty() && fa == fb
}
