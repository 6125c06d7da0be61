//! A size-limited tmpfs for the disk-full tests, shared (through `#[path]`) by the storage's unit
//! and integration tests and the binary's end-to-end test. Mounting needs root; where the machine
//! cannot mount, [`Tmpfs::mount`] says `None` and the caller reports the skip.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted tmpfs, unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax: `4m`) at `dir`, creating it.
    pub fn mount(dir: PathBuf, size: &str) -> Option<Tmpfs> {
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        if !is_root {
            return None;
        }
        std::fs::create_dir_all(&dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs(dir))
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Fills the file system to its last byte with the file `name`, whose path it returns:
    /// removing that file gives the space back.
    pub fn fill(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        let mut f = std::fs::File::create(&path).expect("create the filler");
        let block = vec![0xa5u8; 1 << 20];
        while f.write_all(&block).is_ok() {}
        let page = [0xa5u8; 4096];
        while f.write_all(&page).is_ok() {}
        let _ = f.flush();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}
