//! Any other program a test runs beside the daemon (a browser driver,
//! say), in its own process group so that cleanup reaches what it starts
//! in turn.

use tokio::process::{Child, Command};

use crate::process_group::{group_alive, kill_group};

/// A child leading its own process group; the whole group is killed when
/// this is dropped, however the test ends.
pub struct GroupChild {
    child: Child,
    pid: u32,
}

impl GroupChild {
    /// Spawns `command` as the leader of a new process group.
    pub fn spawn(command: &mut Command) -> anyhow::Result<GroupChild> {
        let child = command.process_group(0).kill_on_drop(true).spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow::anyhow!("the child exited before it could be watched"))?;
        Ok(GroupChild { child, pid })
    }

    /// The child, to take its pipes from and wait for.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        // The leader's id cannot have been reused while its group has
        // members, so only a live group is killed.
        let running = matches!(self.child.try_wait(), Ok(None));
        if running || group_alive(self.pid) {
            kill_group(self.pid);
        }
    }
}
