//! The filesystem as seen from a scan root.
//!
//! `--root /mnt/image` must give exactly the answers the live host would give if that image were
//! `/`: absolute symlinks point inside the image, `..` stops at its top, nothing resolves to the
//! scanning host's own files. So path resolution is done here, component by component, instead of
//! by the kernel. With root `/` it is equivalent to `realpath(3)`.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Symlinks followed before giving up with ELOOP (Linux's limit).
const MAX_SYMLINKS: u32 = 40;

/// An errno-like failure with the text `strerror` would print, for Wazuh-compatible reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsError {
    /// The OS error number (ENOENT, EACCES, ...).
    pub errno: i32,
}

impl FsError {
    /// From an I/O error (unknown kinds map to EIO).
    pub fn from_io(e: &io::Error) -> FsError {
        FsError {
            errno: e
                .raw_os_error()
                .unwrap_or(rustix::io::Errno::IO.raw_os_error()),
        }
    }

    /// `ENOENT`.
    pub fn not_found() -> FsError {
        FsError {
            errno: rustix::io::Errno::NOENT.raw_os_error(),
        }
    }

    /// Whether this is ENOENT.
    pub fn is_not_found(&self) -> bool {
        self.errno == rustix::io::Errno::NOENT.raw_os_error()
    }

    /// Whether the OS refused access (EACCES, EPERM): a privilege problem, not a finding.
    pub fn is_permission_denied(&self) -> bool {
        self.errno == rustix::io::Errno::ACCESS.raw_os_error()
            || self.errno == rustix::io::Errno::PERM.raw_os_error()
    }

    /// The message `strerror(errno)` gives.
    pub fn strerror(&self) -> String {
        let s = io::Error::from_raw_os_error(self.errno).to_string();
        match s.find(" (os error") {
            Some(i) => s[..i].to_string(),
            None => s,
        }
    }
}

/// A scan root.
#[derive(Debug, Clone)]
pub struct FsRoot {
    root: PathBuf,
}

impl FsRoot {
    /// A root directory (`/` for the live host).
    pub fn new(root: impl Into<PathBuf>) -> FsRoot {
        FsRoot { root: root.into() }
    }

    /// Whether this is the live host's `/`.
    pub fn is_host(&self) -> bool {
        self.root == Path::new("/")
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Host path of a logical path, without resolving anything.
    pub fn host_path(&self, logical: &[OsString]) -> PathBuf {
        let mut p = self.root.clone();
        for c in logical {
            p.push(c);
        }
        p
    }

    /// `realpath` inside the root: every symlink followed, the result guaranteed to lie inside
    /// the root. Returns the resolved host path.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, FsError> {
        let mut resolved: Vec<OsString> = Vec::new();
        let mut pending: Vec<OsString> = components(path.as_bytes());
        pending.reverse();
        let mut links = 0;
        while let Some(comp) = pending.pop() {
            if comp == "." || comp.is_empty() {
                continue;
            }
            if comp == ".." {
                resolved.pop();
                continue;
            }
            resolved.push(comp);
            let host = self.host_path(&resolved);
            let meta = fs::symlink_metadata(&host).map_err(|e| FsError::from_io(&e))?;
            if meta.file_type().is_symlink() {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(FsError {
                        errno: rustix::io::Errno::LOOP.raw_os_error(),
                    });
                }
                let target = fs::read_link(&host).map_err(|e| FsError::from_io(&e))?;
                resolved.pop();
                let tb = target.as_os_str().as_bytes();
                if tb.first() == Some(&b'/') {
                    resolved.clear();
                }
                let mut more = components(tb);
                more.reverse();
                pending.extend(more);
            } else if !pending.iter().all(|c| c == "." || c.is_empty()) && !meta.is_dir() {
                return Err(FsError {
                    errno: rustix::io::Errno::NOTDIR.raw_os_error(),
                });
            }
        }
        Ok(self.host_path(&resolved))
    }

    /// `lstat` of a path whose parent components are resolved inside the root (the final
    /// component is not followed), as `lstat("dir/name")` does on the live host.
    pub fn lstat(&self, path: &str) -> Result<Metadata, FsError> {
        let bytes = path.as_bytes();
        let trimmed = trim_trailing_slashes(bytes);
        let (parent, name) = match trimmed.iter().rposition(|b| *b == b'/') {
            Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
            None => (&b""[..], trimmed),
        };
        let parent = self.resolve(&String::from_utf8_lossy(parent))?;
        let host = if name.is_empty() {
            parent
        } else {
            parent.join(OsString::from_vec(name.to_vec()))
        };
        fs::symlink_metadata(host).map_err(|e| FsError::from_io(&e))
    }
}

fn trim_trailing_slashes(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 1 && b[end - 1] == b'/' {
        end -= 1;
    }
    &b[..end]
}

fn components(path: &[u8]) -> Vec<OsString> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .map(|c| OsString::from_vec(c.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_root() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        fs::create_dir_all(root.join("etc/ssh")).expect("mkdir");
        fs::write(root.join("etc/ssh/sshd_config"), "Port 22\n").expect("write");
        symlink("/etc/ssh/sshd_config", root.join("etc/link")).expect("link");
        symlink("../../../../etc/ssh", root.join("etc/up")).expect("link");
        symlink("loop", root.join("etc/loop")).expect("link");
        let r = FsRoot::new(root);
        assert_eq!(
            r.resolve("/etc/link").expect("ok"),
            root.join("etc/ssh/sshd_config")
        );
        assert_eq!(
            r.resolve("/etc/up/sshd_config").expect("ok"),
            root.join("etc/ssh/sshd_config")
        );
        assert!(
            r.resolve("/etc/missing")
                .expect_err("enoent")
                .is_not_found()
        );
        assert_eq!(
            r.resolve("/etc/loop").expect_err("eloop").errno,
            rustix::io::Errno::LOOP.raw_os_error()
        );
        assert_eq!(
            r.resolve("/etc/ssh/sshd_config/x")
                .expect_err("enotdir")
                .errno,
            rustix::io::Errno::NOTDIR.raw_os_error()
        );
        assert!(
            r.lstat("/etc/link")
                .expect("lstat")
                .file_type()
                .is_symlink()
        );
        assert!(r.lstat("/etc/up/sshd_config").expect("lstat").is_file());
    }

    #[test]
    fn strerror_text() {
        assert_eq!(FsError::not_found().strerror(), "No such file or directory");
    }
}
