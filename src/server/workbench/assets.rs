//! The page's static files, compiled into the binary: nothing to install or fetch beside it.
//! htmx is a pinned, committed copy (web/static/README.md says which and its digest).

const FILES: &[(&str, &[u8], &str)] = &[
    ("htmx-2.0.11.min.js", include_bytes!("../../../web/static/htmx-2.0.11.min.js"), "text/javascript; charset=utf-8"),
    ("workbench.js", include_bytes!("../../../web/static/workbench.js"), "text/javascript; charset=utf-8"),
    ("workbench.css", include_bytes!("../../../web/static/workbench.css"), "text/css; charset=utf-8"),
    ("htmx-LICENSE.txt", include_bytes!("../../../web/static/htmx-LICENSE.txt"), "text/plain; charset=utf-8"),
];

/// The file's bytes and content type.
pub fn get(name: &str) -> Option<(&'static [u8], &'static str)> {
    FILES.iter().find(|(n, _, _)| *n == name).map(|(_, body, ty)| (*body, *ty))
}
