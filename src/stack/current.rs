//! Which stack a command means: the one named (`--stack`), else the one the last `lab up` used
//! (remembered in `<state>/stack`), else [`DEFAULT_STACK`]. Shared by the CLI, the monitor, the
//! lessons and the probes, so they all find the same containers.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use super::{Error, Scale, Stack, locate};

/// The stack `lab up` uses unless told otherwise.
pub const DEFAULT_STACK: &str = "lambda";
/// `<state>/stack`: the stack file the last `lab up` used, so `down`/`ps`/`logs` find it.
const CURRENT_STACK_FILE: &str = "stack";
/// `<state>/scale.toml`: the replica counts `lab up --scale` asked for, per stack name, so a later
/// `lab up` (or the monitor's) keeps the lab's shape until `--scale` changes it.
const SCALE_FILE: &str = "scale.toml";

/// The stack file for `named` (a name from `stacks/` or a path), else the remembered one, else
/// the default.
pub fn stack_path(named: Option<&str>, state_dir: &Path) -> Result<PathBuf, Error> {
    if let Some(s) = named {
        return locate(s, state_dir);
    }
    if let Ok(text) = std::fs::read_to_string(state_dir.join(CURRENT_STACK_FILE)) {
        let remembered = PathBuf::from(text.trim());
        if remembered.is_file() {
            return Ok(remembered);
        }
    }
    locate(DEFAULT_STACK, state_dir)
}

/// The stack's name (its labels) for commands that only need to find its resources.
pub fn stack_name(named: Option<&str>, state_dir: &Path) -> Result<String, Error> {
    Ok(Stack::load(&stack_path(named, state_dir)?)?.name)
}

/// Records the stack file `lab up` used, so later commands (and the monitor) find it.
pub fn remember_stack(state_dir: &Path, path: &Path) -> Result<(), Error> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let file = state_dir.join(CURRENT_STACK_FILE);
    std::fs::create_dir_all(state_dir)
        .and_then(|()| std::fs::write(&file, absolute.display().to_string()))
        .map_err(|cause| Error::Io {
            action: "write",
            path: file,
            cause,
        })
}

/// The stack at `path`, scaled as remembered for it and then as `requested` says.
pub fn load_stack(path: &Path, state_dir: &Path, requested: &Scale) -> Result<Stack, Error> {
    let (file, base_dir) = Stack::read(path)?;
    let remembered = remembered_scales(state_dir).remove(&file.name).unwrap_or_default();
    let scale = Scale::from_pairs(remembered).applicable_to(&file).merged(requested);
    Stack::from_file_scaled(file, base_dir, &scale)
}

/// Records the replica counts `stack` runs with (only those above one).
pub fn remember_scale(state_dir: &Path, stack: &Stack) -> Result<(), Error> {
    let mut all = remembered_scales(state_dir);
    let scaled: BTreeMap<String, u32> = stack
        .scale
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    if scaled.is_empty() {
        all.remove(&stack.name);
    } else {
        all.insert(stack.name.clone(), scaled);
    }
    let file = state_dir.join(SCALE_FILE);
    let text = toml::to_string(&all).unwrap_or_default();
    std::fs::create_dir_all(state_dir)
        .and_then(|()| std::fs::write(&file, text))
        .map_err(|cause| Error::Io {
            action: "write",
            path: file,
            cause,
        })
}

/// Stack name → service → count. A missing or unreadable file is no scaling: the lab starts as
/// its stack file says, which `lab up --scale` can then change again.
fn remembered_scales(state_dir: &Path) -> BTreeMap<String, BTreeMap<String, u32>> {
    let file = state_dir.join(SCALE_FILE);
    let Ok(text) = std::fs::read_to_string(&file) else {
        return BTreeMap::new();
    };
    toml::from_str(&text).unwrap_or_else(|e| {
        tracing::warn!(path = %file.display(), error = %e, "ignoring an unreadable scale file");
        BTreeMap::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remembered_stack_is_used_until_another_is_named() {
        let state = tempfile::tempdir().unwrap();
        let default = stack_path(None, state.path()).unwrap();
        assert!(default.ends_with("stacks/lambda.toml"), "{}", default.display());
        let minimal = stack_path(Some("minimal"), state.path()).unwrap();
        remember_stack(state.path(), &minimal).unwrap();
        assert_eq!(
            stack_path(None, state.path()).unwrap(),
            std::path::absolute(&minimal).unwrap()
        );
        assert_eq!(stack_path(Some("lambda"), state.path()).unwrap(), default);
    }
}
