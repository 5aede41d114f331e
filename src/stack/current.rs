//! Which stack a command means: the one named (`--stack`), else the one the last `lab up` used
//! (remembered in `<state>/stack`), else [`DEFAULT_STACK`]. Shared by the CLI, the monitor, the
//! lessons and the probes, so they all find the same containers.

use std::path::{Path, PathBuf};

use super::{Error, Stack, locate};

/// The stack `lab up` uses unless told otherwise.
pub const DEFAULT_STACK: &str = "lambda";
/// `<state>/stack`: the stack file the last `lab up` used, so `down`/`ps`/`logs` find it.
const CURRENT_STACK_FILE: &str = "stack";

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
