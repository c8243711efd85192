//! Code-system versions installed at run time (an uploaded CSV, a PUT CodeSystem), kept in
//! the data directory so that a restart serves them again beside the configured tables.
//!
//! One JSON file per installed version, named by install order and by edition and version
//! (hex, as ids and versions may hold any character): replaying them in that order rebuilds
//! exactly what was served. Reinstalling a version replaces its file. Each file is
//! written to a temporary name, synced, then renamed, so a crash leaves the old file or the
//! new one, never half of one.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::EditionSpec;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a stored code-system version: {source}")]
    Format { path: PathBuf, source: serde_json::Error },
}

/// One installed version: what [`super::edition_from_rows`] needs to build it again.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstalledVersion {
    pub spec: EditionSpec,
    /// Category headers kept from the version it was built on.
    pub headers: HashMap<String, String>,
    /// `(code, name)`, as installed.
    pub rows: Vec<(String, String)>,
    /// Whether the admin made it the current version. Files kept before this was recorded
    /// were all made current, as installs then were.
    #[serde(default = "made_current_before")]
    pub make_current: bool,
}

fn made_current_before() -> bool {
    true
}

/// The folder of installed versions.
pub struct InstalledVersions {
    dir: PathBuf,
}

impl InstalledVersions {
    /// The versions kept in `dir` ([`crate::catalog::DataDir::code_system_versions`]).
    pub fn new(dir: impl Into<PathBuf>) -> InstalledVersions {
        InstalledVersions { dir: dir.into() }
    }

    /// Keeps a version durably before it is served.
    pub fn save(&self, version: &InstalledVersion) -> Result<(), UploadError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| UploadError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let existing = self.files()?;
        let next = existing.iter().map(|(n, _)| *n).max().map_or(1, |n| n + 1);
        let key = version_key(&version.spec);
        let path = self.dir.join(format!("{next:08}.{key}.json"));
        let tmp = self.dir.join(format!("{next:08}.{key}.json.tmp"));
        let text = serde_json::to_vec(version).map_err(|source| UploadError::Format { path: path.clone(), source })?;
        let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&text).and_then(|_| file.sync_all()).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        // The rename itself survives a crash only once the folder is synced.
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io(&self.dir))?;
        // An earlier file of the same edition and version is superseded.
        for (_, old) in existing {
            let superseded = |k: &str| old.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(&format!(".{k}.json")));
            if superseded(&key) || superseded(&legacy_version_key(&version.spec)) {
                std::fs::remove_file(&old).map_err(io(&old))?;
            }
        }
        Ok(())
    }

    /// Every kept version, in install order. A file that does not read is reported with its
    /// path and left in place for the admin; the others still load.
    pub fn load(&self) -> Result<(Vec<InstalledVersion>, Vec<UploadError>), UploadError> {
        let mut versions = Vec::new();
        let mut unreadable = Vec::new();
        for (_, path) in self.files()? {
            match self.read(&path) {
                Ok(v) => versions.push(v),
                Err(e) => unreadable.push(e),
            }
        }
        Ok((versions, unreadable))
    }

    fn read(&self, path: &Path) -> Result<InstalledVersion, UploadError> {
        let text = std::fs::read(path).map_err(|source| UploadError::Io { path: path.to_owned(), source })?;
        serde_json::from_slice(&text).map_err(|source| UploadError::Format { path: path.to_owned(), source })
    }

    /// `(install number, path)` of the kept files, in install order.
    fn files(&self) -> Result<Vec<(u64, PathBuf)>, UploadError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(UploadError::Io { path: self.dir.clone(), source }),
        };
        let mut files: Vec<(u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let path = e.path();
                let n = path.file_name()?.to_str()?.strip_suffix(".json")?.split('.').next()?.parse().ok()?;
                Some((n, path))
            })
            .collect();
        files.sort();
        Ok(files)
    }
}

/// Edition and version as a file-name part: a digest, so that any id and version (the
/// routes bound both) make a short, safe name.
fn version_key(spec: &EditionSpec) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{}\0{}", spec.id, spec.version).as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The name part files were kept under before: the id and version in hex.
fn legacy_version_key(spec: &EditionSpec) -> String {
    format!("{}\0{}", spec.id, spec.version).bytes().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: &str, version: &str, rows: &[(&str, &str)]) -> InstalledVersion {
        InstalledVersion {
            spec: EditionSpec {
                id: id.into(),
                file: PathBuf::new(),
                version: version.into(),
                title: Some("t".into()),
                url: None,
                kind: None,
                role: Some("clinical".into()),
                headers: None,
            },
            headers: HashMap::from([("I25".to_owned(), "慢性缺血性心脏病".to_owned())]),
            rows: rows.iter().map(|(c, n)| (c.to_string(), n.to_string())).collect(),
            make_current: true,
        }
    }

    #[test]
    fn versions_come_back_in_install_order_and_a_reinstall_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let kept = InstalledVersions::new(dir.path().join("code-system-versions"));
        assert!(kept.load().unwrap().0.is_empty(), "nothing kept yet");
        let a1 = version("a", "1", &[("I25.103", "冠心病")]);
        let b1 = version("b", "1", &[("L01", "床旁心脏超声")]);
        let a1_again = version("a", "1", &[("I25.103", "冠状动脉粥样硬化性心脏病")]);
        for v in [&a1, &b1, &a1_again] {
            kept.save(v).unwrap();
        }
        let (loaded, unreadable) = kept.load().unwrap();
        assert!(unreadable.is_empty());
        assert_eq!(loaded, vec![b1, a1_again]);
    }

    #[test]
    fn an_unreadable_file_is_reported_and_the_rest_load() {
        let dir = tempfile::tempdir().unwrap();
        let kept = InstalledVersions::new(dir.path().join("code-system-versions"));
        kept.save(&version("a", "1", &[("A", "x")])).unwrap();
        std::fs::write(dir.path().join("code-system-versions/00000002.00.json"), b"{ half a file").unwrap();
        let (loaded, unreadable) = kept.load().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(unreadable.len(), 1);
        assert!(unreadable[0].to_string().contains("00000002.00.json"), "{}", unreadable[0]);
    }
}
