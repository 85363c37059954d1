//! An app to deploy: a source directory holding the demo app's `server`
//! script, the demo worker's `worker` script, a `VERSION` file and a
//! `baton.toml`, plus an app root, both in temporary directories.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::binary;

/// A deployable app source and its app root.
pub struct AppSource {
    name: String,
    dir: tempfile::TempDir,
    root: PathBuf,
}

/// Builds the `baton.toml` of an [`AppSource`].
pub struct AppSourceBuilder {
    name: String,
    version: String,
    app_lines: Vec<String>,
    web_lines: Vec<String>,
    extra: String,
    root: Option<PathBuf>,
}

impl AppSourceBuilder {
    /// Adds a line to `[app]` (`shared = ["storage"]`).
    pub fn app_line(mut self, line: &str) -> Self {
        self.app_lines.push(line.to_string());
        self
    }

    /// Adds a line to `[web]` (`processes = 2`); a key given here replaces
    /// the default of the same key.
    pub fn web_line(mut self, line: &str) -> Self {
        self.web_lines.push(line.to_string());
        self
    }

    /// Appends TOML after `[web]` (`[[workers]]`, `[build]`, `[hooks]`).
    pub fn extra(mut self, toml: &str) -> Self {
        self.extra.push_str(toml);
        self.extra.push('\n');
        self
    }

    /// Puts the app root at `root` instead of a temporary directory.
    pub fn root(mut self, root: &Path) -> Self {
        self.root = Some(root.to_path_buf());
        self
    }

    /// Writes the source directory.
    pub fn build(self) -> anyhow::Result<AppSource> {
        let dir = tempfile::Builder::new()
            .prefix("baton-app-")
            .tempdir()
            .context("creating the app's temporary directory")?;
        let root = self.root.clone().unwrap_or_else(|| dir.path().join("root"));
        let source = AppSource {
            name: self.name.clone(),
            root,
            dir,
        };
        std::fs::create_dir_all(source.source_dir())?;
        source.write_script(
            "server",
            &format!(
                "#!/bin/sh\nVERSION=$(cat VERSION)\nexport VERSION\nexec {} \"$@\"\n",
                binary("demo-app").display()
            ),
        )?;
        source.write_script(
            "worker",
            &format!(
                "#!/bin/sh\nVERSION=$(cat VERSION)\nQUEUE_DB=\"$BATON_SHARED_DIR/queue.db\"\n\
                 export VERSION QUEUE_DB\nexec {} \"$@\"\n",
                binary("demo-worker").display()
            ),
        )?;
        source.set_version(&self.version)?;
        source.write_config(&self.config_text(&source.root))?;
        Ok(source)
    }

    fn config_text(&self, root: &Path) -> String {
        let mut web = vec![
            ("command", "\"./server\"".to_string()),
            ("health_interval", "\"50ms\"".to_string()),
            ("healthy_after", "2".to_string()),
            ("boot_timeout", "\"20s\"".to_string()),
            ("drain_timeout", "\"10s\"".to_string()),
            ("stop_timeout", "\"10s\"".to_string()),
            ("keep_warm", "\"30s\"".to_string()),
        ];
        let mut custom = Vec::new();
        for line in &self.web_lines {
            let key = line.split('=').next().unwrap_or("").trim().to_string();
            web.retain(|(default, _)| *default != key);
            custom.push(line.clone());
        }
        let mut text = format!(
            "[app]\nname = \"{}\"\nroot = \"{}\"\n",
            self.name,
            root.display()
        );
        for line in &self.app_lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str("\n[web]\n");
        for (key, value) in web {
            text.push_str(&format!("{key} = {value}\n"));
        }
        for line in custom {
            text.push_str(&line);
            text.push('\n');
        }
        text.push('\n');
        text.push_str(&self.extra);
        text
    }
}

impl AppSource {
    /// A builder for app `name`, first at `version`.
    pub fn builder(name: &str, version: &str) -> AppSourceBuilder {
        AppSourceBuilder {
            name: name.to_string(),
            version: version.to_string(),
            app_lines: Vec::new(),
            web_lines: Vec::new(),
            extra: String::new(),
            root: None,
        }
    }

    /// The app's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory `baton deploy --source` copies.
    pub fn source_dir(&self) -> PathBuf {
        self.dir.path().join("src")
    }

    /// The app's `baton.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.source_dir().join("baton.toml")
    }

    /// The app root (`releases/`, `shared/`, `current`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The release `current` points at.
    pub fn current_release(&self) -> Option<String> {
        let target = std::fs::read_link(self.root.join("current")).ok()?;
        Some(target.file_name()?.to_string_lossy().into_owned())
    }

    /// Release directories on disk (complete or not), sorted.
    pub fn release_dirs(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.root.join("releases"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Changes the version the next deploy ships (the source's content
    /// changes, so the release's revision does too).
    pub fn set_version(&self, version: &str) -> anyhow::Result<()> {
        self.write_file("VERSION", &format!("{version}\n"))
    }

    /// Replaces `baton.toml`.
    pub fn write_config(&self, text: &str) -> anyhow::Result<()> {
        self.write_file("baton.toml", text)
    }

    /// Writes a file into the source directory.
    pub fn write_file(&self, relative: &str, contents: &str) -> anyhow::Result<()> {
        let path = self.source_dir().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))
    }

    /// Writes an executable script into the source directory.
    pub fn write_script(&self, relative: &str, contents: &str) -> anyhow::Result<()> {
        self.write_file(relative, contents)?;
        let path = self.source_dir().join(relative);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(())
    }
}

impl Drop for AppSource {
    /// The daemon leaves app processes running when it stops (the next
    /// daemon adopts them); a test must not. Every process whose working
    /// directory is inside this app's root is one of its releases': kill
    /// its process group.
    fn drop(&mut self) {
        for pid in processes_under(&self.root) {
            crate::process_group::kill_group(pid);
        }
    }
}

/// Pids of processes whose working directory is under `root`.
pub fn processes_under(root: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(root))
        })
        .collect()
}
