//! The output folder of a cycle: where phases write their reports and world states, and the
//! list of what they wrote.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The kinds of file a caller may choose to have written (`--output-format`). Files of no
/// listed kind (the `IaC`) are always written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Format {
    /// `.json`: world states, the execution plan.
    Json,
    /// `.md`: the phases' reports.
    Markdown,
    /// `.sarif`: each capture's failing security findings as SARIF 2.1.0.
    Sarif,
    /// `.ocsf.json`: each capture's security findings as OCSF 1.5.0 Detection Findings.
    Ocsf,
    /// `.asff.json`: each capture's security findings in the AWS Security Finding Format.
    Asff,
    /// `.html`: the run's report, one self-contained page.
    Html,
}

impl Format {
    /// Every format.
    pub const ALL: [Self; 6] = [
        Self::Json,
        Self::Markdown,
        Self::Sarif,
        Self::Ocsf,
        Self::Asff,
        Self::Html,
    ];

    /// The formats written unless others are chosen: JSON, Markdown and the HTML report.
    pub const DEFAULT: [Self; 3] = [Self::Json, Self::Markdown, Self::Html];

    /// The format of a file name, by its extension (`.ocsf.json` and `.asff.json` before
    /// `.json`).
    #[must_use]
    pub fn of(name: &str) -> Option<Self> {
        if name.ends_with(".ocsf.json") {
            return Some(Self::Ocsf);
        }
        if name.ends_with(".asff.json") {
            return Some(Self::Asff);
        }
        match Path::new(name).extension()?.to_str()? {
            "json" => Some(Self::Json),
            "md" => Some(Self::Markdown),
            "sarif" => Some(Self::Sarif),
            "html" => Some(Self::Html),
            _ => None,
        }
    }
}

/// Where phases write their files. Without a folder, nothing is written.
#[derive(Debug, Clone)]
pub struct Output {
    dir: Option<PathBuf>,
    formats: Vec<Format>,
    written: Vec<PathBuf>,
}

impl Default for Output {
    fn default() -> Self {
        Self {
            dir: None,
            formats: Format::DEFAULT.to_vec(),
            written: Vec::new(),
        }
    }
}

impl Output {
    /// Writes nothing.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Writes into `dir` (created on the first write).
    #[must_use]
    pub fn to(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(dir.into()),
            ..Self::default()
        }
    }

    /// Writes only files of `formats` (and those of no format, such as the `IaC`).
    #[must_use]
    pub fn with_formats(mut self, formats: Vec<Format>) -> Self {
        self.formats = formats;
        self
    }

    /// True when a file called `name` is written.
    #[must_use]
    pub fn wants(&self, name: &str) -> bool {
        self.dir.is_some() && Format::of(name).is_none_or(|f| self.formats.contains(&f))
    }

    /// The folder, if any.
    #[must_use]
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Writes `bytes` as `name` in the folder, atomically, and records it. Returns the path, or
    /// `None` without a folder or when `name`'s format is not wanted.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<Option<PathBuf>> {
        if !self.wants(name) {
            return Ok(None);
        }
        let Some(dir) = &self.dir else { return Ok(None) };
        let path = dir.join(name);
        write_atomic(&path, bytes)?;
        self.record(path.clone());
        Ok(Some(path))
    }

    /// Writes `bytes` as `relative` (a path inside the folder) whatever the chosen formats:
    /// for the `IaC`, which is the product rather than a report.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn write_always(&mut self, relative: &Path, bytes: &[u8]) -> Result<Option<PathBuf>> {
        let Some(dir) = &self.dir else { return Ok(None) };
        let path = dir.join(relative);
        write_atomic(&path, bytes)?;
        self.record(path.clone());
        Ok(Some(path))
    }

    /// Records a file written by other means (for example a rendered `IaC` folder's files).
    pub fn record(&mut self, path: PathBuf) {
        if !self.written.contains(&path) {
            self.written.push(path);
        }
    }

    /// Every file written so far, in order, each once.
    #[must_use]
    pub fn written(&self) -> &[PathBuf] {
        &self.written
    }
}

/// Writes `bytes` to `path` atomically: into a temporary file beside it, flushed to disk, then
/// renamed over the target. A crash leaves either the old file or the new one, never half of one.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_io(path, bytes).map_err(|(at, e)| Error::io(at, e))
}

/// [`write_atomic`] for the pure rooms, which have error types of their own: the error and the
/// path it concerns (the folder, when it could not be created).
///
/// # Errors
/// The operating-system error, and where.
pub fn write_atomic_io(path: &Path, bytes: &[u8]) -> std::result::Result<(), (PathBuf, std::io::Error)> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| (dir.to_path_buf(), e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        (path.to_path_buf(), e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_chosen_formats_are_written_and_iac_always_is() {
        let dir = std::env::temp_dir().join(format!("miyabi-output-{}", std::process::id()));
        let mut out = Output::to(&dir).with_formats(vec![Format::Json]);
        assert!(out.write("world_state_0.json", b"{}").unwrap().is_some());
        assert!(out.write("discovery_report.md", b"# r").unwrap().is_none());
        assert!(out.write("main.tf", b"").unwrap().is_some());
        let template = Path::new("cloudformation/template.json");
        assert!(out.write_always(template, b"{}").unwrap().is_some());
        assert!(!dir.join("discovery_report.md").exists());
        assert_eq!(
            out.written(),
            [dir.join("world_state_0.json"), dir.join("main.tf"), dir.join(template)]
        );
        assert!(Output::none().write("a.json", b"{}").unwrap().is_none());
        assert!(!out.wants("findings_0.ocsf.json") && !out.wants("findings_0.asff.json"));
        assert_eq!(Format::of("findings_0.ocsf.json"), Some(Format::Ocsf));
        assert_eq!(Format::of("findings_0.asff.json"), Some(Format::Asff));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
