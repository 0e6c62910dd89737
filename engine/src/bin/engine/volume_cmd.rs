//! `engine volume ...`: calls into `engine::volume` and prints the results.

use std::path::Path;

use anyhow::Result;
use engine::volume::Volumes;

use super::cli::VolumeCommand;

pub fn execute(root: &Path, cmd: &VolumeCommand) -> Result<()> {
    let volumes = Volumes::new(root);
    match cmd {
        VolumeCommand::Create { name } => {
            volumes.ensure(name)?;
            println!("{name}");
        }
        VolumeCommand::Ls => {
            println!("VOLUME NAME");
            for name in volumes.list()? {
                println!("{name}");
            }
        }
        VolumeCommand::Rm { names } => {
            for name in names {
                volumes.remove(name)?;
                println!("{name}");
            }
        }
    }
    Ok(())
}
