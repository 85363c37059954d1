//! What /proc says about a process: its identity, liveness, group, size and
//! CPU time.
//!
//! A pid alone is not an identity: the kernel reuses pids. A process is the
//! pair (pid, start time), the start time being field 22 of
//! `/proc/<pid>/stat`, which no later process with the same pid can share.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::unistd::{SysconfVar, sysconf};

use crate::spawn::MARKER_VAR;

/// The fields of `/proc/<pid>/stat` that supervision needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// One letter: R, S, D, Z (zombie), X (dead), ...
    pub state: char,
    /// Process group id.
    pub pgrp: u32,
    /// Clock ticks since boot at which the process started.
    pub start_time: u64,
    /// Clock ticks it has spent running its own code (field 14).
    pub user_ticks: u64,
    /// Clock ticks the kernel has spent on its behalf (field 15).
    pub system_ticks: u64,
}

impl ProcStat {
    /// A zombie has exited and only waits to be reaped; it runs no code.
    pub fn is_gone(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Parses the text of `/proc/<pid>/stat`.
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    // comm (field 2) is in parentheses and may itself hold spaces and
    // parentheses; the fields after the last ')' are plain.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 of the file.
    let state = fields.first()?.chars().next()?;
    let field = |number: usize| fields.get(number - 3)?.parse::<u64>().ok();
    Some(ProcStat {
        state,
        pgrp: u32::try_from(field(5)?).ok()?,
        start_time: field(22)?,
        user_ticks: field(14)?,
        system_ticks: field(15)?,
    })
}

/// Reads `/proc/<pid>/stat`, zombies included.
pub(crate) fn read_stat(pid: u32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// The start time of a live process; `None` if there is no such process or
/// it is a zombie.
pub fn process_start_time(pid: u32) -> Option<u64> {
    read_stat(pid)
        .filter(|stat| !stat.is_gone())
        .map(|stat| stat.start_time)
}

/// True if the process (pid, start_time) still runs: same pid, same start
/// time, not a zombie.
pub fn is_alive(pid: u32, start_time: u64) -> bool {
    process_start_time(pid) == Some(start_time)
}

/// Finds a live process whose environment holds `BATON_PROCESS_ID=<marker>`,
/// to recover a process whose spawn the daemon did not live to record.
/// Children inherit the marker, so the process group leader wins over them.
pub fn find_by_marker(marker: &str) -> Option<(u32, u64)> {
    let wanted = format!("{MARKER_VAR}={marker}");
    let own = std::process::id();
    let mut found: Option<(u32, u64)> = None;
    for pid in pids() {
        if pid == own {
            continue;
        }
        // Processes of other users cannot be read: they are not ours anyway.
        let Ok(environ) = fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if !environ
            .split(|byte| *byte == 0)
            .any(|entry| entry == wanted.as_bytes())
        {
            continue;
        }
        let Some(stat) = read_stat(pid).filter(|stat| !stat.is_gone()) else {
            continue;
        };
        if stat.pgrp == pid {
            return Some((pid, stat.start_time));
        }
        found.get_or_insert((pid, stat.start_time));
    }
    found
}

/// Resident memory of a process in bytes, from `/proc/<pid>/statm`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    let page_size = u64::try_from(sysconf(SysconfVar::PAGE_SIZE).ok()??).ok()?;
    pages.checked_mul(page_size)
}

/// CPU time a process has used, user and system, in seconds, from
/// `/proc/<pid>/stat`; its children's time is not included.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = read_stat(pid)?;
    let ticks_per_second = u64::try_from(sysconf(SysconfVar::CLK_TCK).ok()??).ok()?;
    if ticks_per_second == 0 {
        return None;
    }
    let ticks = stat.user_ticks.saturating_add(stat.system_ticks);
    Some(ticks as f64 / ticks_per_second as f64)
}

/// Live (non-zombie) processes in process group `pgid`, as (pid, start
/// time).
pub(crate) fn group_members(pgid: u32) -> Vec<(u32, u64)> {
    pids()
        .filter_map(|pid| {
            let stat = read_stat(pid)?;
            (stat.pgrp == pgid && !stat.is_gone()).then_some((pid, stat.start_time))
        })
        .collect()
}

/// Wall-clock time at which a process with this start time started.
pub(crate) fn started_at(start_time: u64) -> Option<SystemTime> {
    let ticks_per_second = u64::try_from(sysconf(SysconfVar::CLK_TCK).ok()??).ok()?;
    if ticks_per_second == 0 {
        return None;
    }
    let boot = boot_time(&fs::read_to_string("/proc/stat").ok()?)?;
    let since_boot = Duration::from_secs(start_time / ticks_per_second)
        + Duration::from_secs(start_time % ticks_per_second) / ticks_per_second as u32;
    UNIX_EPOCH.checked_add(Duration::from_secs(boot) + since_boot)
}

/// The `btime` line of `/proc/stat`: boot time in seconds since the epoch.
fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Every pid in /proc right now.
fn pids() -> impl Iterator<Item = u32> {
    fs::read_dir(Path::new("/proc"))
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;
    use std::time::Instant;

    use super::*;

    fn stat_line(comm: &str, state: char, pgrp: u32, start_time: u64) -> String {
        // Fields 3..=22, with recognisable values where they matter.
        let mut fields: Vec<String> = (3..=52).map(|n| (n * 10).to_string()).collect();
        fields[0] = state.to_string();
        fields[5 - 3] = pgrp.to_string();
        fields[22 - 3] = start_time.to_string();
        fields[14 - 3] = "700".to_string();
        fields[15 - 3] = "11".to_string();
        format!("1234 ({comm}) {}\n", fields.join(" "))
    }

    #[test]
    fn parses_state_group_and_start_time() {
        let stat = parse_stat(&stat_line("sleep", 'S', 77, 987_654)).expect("parses");
        assert_eq!(
            stat,
            ProcStat {
                state: 'S',
                pgrp: 77,
                start_time: 987_654,
                user_ticks: 700,
                system_ticks: 11,
            }
        );
    }

    #[test]
    fn comm_with_spaces_and_parens_does_not_shift_fields() {
        let stat = parse_stat(&stat_line("a) (b c) Z 1 2", 'R', 5, 42)).expect("parses");
        assert_eq!(stat.state, 'R');
        assert_eq!(stat.pgrp, 5);
        assert_eq!(stat.start_time, 42);
    }

    #[test]
    fn truncated_stat_is_rejected() {
        assert_eq!(parse_stat("1 (x) S 1 2 3"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_alive_with_its_start_time_only() {
        let pid = std::process::id();
        let start_time = process_start_time(pid).expect("own stat");
        assert!(is_alive(pid, start_time));
        assert!(!is_alive(pid, start_time + 1));
    }

    #[test]
    fn own_start_is_recent() {
        let start_time = process_start_time(std::process::id()).expect("own stat");
        let started = started_at(start_time).expect("boot time");
        let age = SystemTime::now()
            .duration_since(started)
            .unwrap_or(Duration::ZERO);
        assert!(age < Duration::from_secs(3600), "age {age:?}");
    }

    #[test]
    fn boot_time_line_is_found() {
        assert_eq!(
            boot_time("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
        assert_eq!(boot_time("cpu 1 2 3\n"), None);
    }

    #[test]
    fn zombie_counts_as_gone() {
        let mut child = Command::new("true").spawn().expect("spawn true");
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while read_stat(pid).is_some_and(|stat| stat.state != 'Z') {
            assert!(Instant::now() < deadline, "never became a zombie");
            std::thread::sleep(Duration::from_millis(10));
        }
        let stat = read_stat(pid).expect("zombie still in /proc until reaped");
        assert_eq!(stat.state, 'Z');
        assert_eq!(process_start_time(pid), None);
        assert!(!is_alive(pid, stat.start_time));
        child.wait().expect("reap");
        assert_eq!(read_stat(pid), None);
    }

    #[test]
    fn gone_pid_has_no_start_time() {
        // Above the kernel's pid_max (at most 2^22), so never in use.
        assert_eq!(process_start_time(u32::MAX - 1), None);
        assert_eq!(rss_bytes(u32::MAX - 1), None);
    }

    #[test]
    fn own_cpu_time_grows_with_work() {
        let before = cpu_seconds(std::process::id()).expect("own stat");
        let started = Instant::now();
        let mut spin = 0u64;
        while started.elapsed() < Duration::from_millis(300) {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        let after = cpu_seconds(std::process::id()).expect("own stat");
        assert!(after > before, "{before} -> {after}");
        assert_eq!(cpu_seconds(u32::MAX - 1), None);
    }

    #[test]
    fn own_rss_is_some_pages() {
        let rss = rss_bytes(std::process::id()).expect("own statm");
        assert!(rss >= 4096, "rss {rss}");
    }

    #[test]
    fn finds_a_process_by_its_marker() {
        let marker = format!("proc-info-test-{}", std::process::id());
        let mut child = Command::new("sleep")
            .arg("30")
            .env_clear()
            .env(MARKER_VAR, &marker)
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let start_time = process_start_time(pid);
        let found = find_by_marker(&marker);
        let missing = find_by_marker(&format!("{marker}-other"));
        let _ = child.kill();
        let _ = child.wait();
        assert!(start_time.is_some());
        assert_eq!(found, start_time.map(|start| (pid, start)));
        assert_eq!(missing, None);
    }

    #[test]
    fn group_members_lists_the_group() {
        let mut child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let members = group_members(pid);
        let start_time = process_start_time(pid);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(Some(members), start_time.map(|start| vec![(pid, start)]));
        assert!(group_members(pid).is_empty());
    }
}
