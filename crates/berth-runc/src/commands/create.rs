use anyhow::Result;
use berth_runtime::container::create::{create, CreateOptions};
use berth_runtime::Root;

use crate::cli::CreateArgs;

pub fn options(a: &CreateArgs, foreground: bool) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        foreground,
    }
}

pub fn run(root: &Root, a: &CreateArgs) -> Result<i32> {
    create(root, &options(a, false)).map_err(super::chain)?;
    Ok(0)
}
