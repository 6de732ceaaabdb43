//! The process list, read from `/proc` with no PID cap (Wazuh 4.x only looked at PIDs up to
//! 32768, which misses processes on busy hosts).

/// One process.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    /// Process id.
    pub pid: u32,
    /// Command name (`/proc/PID/comm`, what `ps -p PID` shows in its CMD column).
    pub name: String,
    /// Full command line, arguments joined by spaces.
    pub cmdline: String,
}

/// Lists processes from `/proc`.
pub fn list() -> Result<Vec<ProcInfo>, String> {
    let rd = std::fs::read_dir("/proc").map_err(|e| format!("Process list is empty ({e})"))?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // A process may exit between listing and reading: skip it.
        let Ok(comm) = std::fs::read(entry.path().join("comm")) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        out.push(ProcInfo {
            pid,
            name: String::from_utf8_lossy(&comm)
                .trim_end_matches('\n')
                .to_string(),
            cmdline: cmdline.join(" "),
        });
    }
    if out.is_empty() {
        return Err("Process list is empty.".to_string());
    }
    out.sort_by_key(|p| p.pid);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sees_itself() {
        let me = std::process::id();
        let list = super::list().expect("proc readable");
        assert!(list.iter().any(|p| p.pid == me));
    }
}
