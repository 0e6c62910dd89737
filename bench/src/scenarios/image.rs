//! `image` (CLAIMS C7, container model only): images are layers and a rebuild makes
//! only the changed ones. The engine builds a two-layer image (`COPY workload`, then
//! `COPY data`), the data changes, and it builds again: `layers_total` is the number of
//! layers of the rebuilt image, `layers_reused_on_rebuild` how many the engine took
//! from its build cache (its `--> Using cache` lines). Then two containers run from the
//! image in turn (`engine run --rm IMAGE ready`): `first_start_ms`/`next_start_ms`
//! (launch to `READY`) and `first_disk_kib`/`next_disk_kib` (growth of the engine's
//! root on disk), showing the first container pays for unpacking the layers and the
//! next reuses them.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use super::{Ctx, Measured, Params, Scenario};
use crate::models::Model;
use crate::process::Instance;

/// The image scenario.
#[derive(Debug)]
pub struct Image;

impl Scenario for Image {
    fn name(&self) -> &'static str {
        "image"
    }

    fn once(&self) -> bool {
        true
    }

    fn applies_to(&self, model: &dyn Model) -> bool {
        model.name() == "container"
    }

    fn sample(&self, ctx: &Ctx<'_>, _params: &Params) -> Result<Measured, String> {
        let dir = ctx
            .scratch
            .join(format!("image-claim-{}", super::next_id()));
        let outcome = rebuild(ctx, &dir).and_then(|builds| Ok((builds, starts(ctx, &dir)?)));
        let _ = std::fs::remove_dir_all(&dir);
        let ((first, second), starts) = outcome?;
        let mut m = Measured::default();
        let (new1, reused1) = count_layers(&first);
        let (new2, reused2) = count_layers(&second);
        m.metric("layers_first_build", (new1 + reused1) as f64, "layers");
        m.metric("layers_total", (new2 + reused2) as f64, "layers");
        m.metric("layers_reused_on_rebuild", reused2 as f64, "layers");
        for (label, (ms, kib)) in ["first", "next"].into_iter().zip(starts) {
            m.metric(&format!("{label}_start_ms"), ms, "ms");
            m.metric(&format!("{label}_disk_kib"), kib as f64, "KiB");
        }
        Ok(m)
    }
}

/// Builds, changes the data file, builds again; returns both builds' output.
fn rebuild(ctx: &Ctx<'_>, dir: &Path) -> Result<(String, String), String> {
    let context = dir.join("context");
    std::fs::create_dir_all(&context)
        .map_err(|e| format!("creating {}: {e}", context.display()))?;
    std::fs::copy(&ctx.tools.workload, context.join("workload"))
        .map_err(|e| format!("copying the workload: {e}"))?;
    let file =
        "FROM scratch\nCOPY workload /workload\nCOPY data /data\nENTRYPOINT [\"/workload\"]\n";
    std::fs::write(context.join("Containerfile"), file)
        .map_err(|e| format!("writing the Containerfile: {e}"))?;
    let build = |data: &str| -> Result<String, String> {
        std::fs::write(context.join("data"), data).map_err(|e| format!("writing data: {e}"))?;
        let out = Command::new(&ctx.tools.engine)
            .arg("--root")
            .arg(dir.join("root"))
            .args(["image", "build", "-t", "isolab-bench-layers"])
            .arg(&context)
            .output()
            .map_err(|e| format!("running {}: {e}", ctx.tools.engine.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "engine image build failed{}",
                crate::process::tail(&String::from_utf8_lossy(&out.stderr))
            ));
        }
        Ok(text)
    };
    Ok((build("one")?, build("two")?))
}

/// Runs two containers from the image in turn; (launch to READY ms, disk growth KiB)
/// of each.
fn starts(ctx: &Ctx<'_>, dir: &Path) -> Result<[(f64, u64); 2], String> {
    let root = dir.join("root");
    let one = || -> Result<(f64, u64), String> {
        let before = dir_kib(&root);
        let mut cmd = Command::new(&ctx.tools.engine);
        cmd.arg("--root")
            .arg(&root)
            .args(["run", "--rm", "isolab-bench-layers", "ready"]);
        let mut instance = Instance::spawn(cmd).map_err(|e| e.to_string())?;
        let ready = instance
            .wait_ready(ctx.timeout)
            .map_err(|e| format!("engine run: {e}"))?;
        super::sharing::output(ctx, instance)?;
        Ok((
            ready.as_secs_f64() * 1e3,
            dir_kib(&root).saturating_sub(before),
        ))
    };
    Ok([one()?, one()?])
}

/// Disk blocks used under `dir`, KiB.
pub fn dir_kib(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => m.blocks() / 2 + dir_kib(&e.path()),
            Ok(m) => m.blocks() / 2,
            Err(_) => 0,
        })
        .sum()
}

/// (new layers, layers taken from the cache) in an `engine image build` output.
pub fn count_layers(output: &str) -> (usize, usize) {
    let count = |marker: &str| {
        output
            .lines()
            .filter(|l| l.trim_start().starts_with(marker))
            .count()
    };
    (count("--> New layer"), count("--> Using cache"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_build_output_is_counted() {
        let out = "STEP 1/4: FROM scratch\nSTEP 2/4: COPY workload /workload\n\
                   --> Using cache sha256:02\nSTEP 3/4: COPY data /data\n\
                   --> New layer sha256:74 (110 bytes)\nSTEP 4/4: ENTRYPOINT [\"/workload\"]\n";
        assert_eq!(count_layers(out), (1, 1));
        assert_eq!(count_layers(""), (0, 0));
    }

    #[test]
    fn disk_use_counts_files_below() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/f"), vec![1u8; 64 * 1024]).unwrap();
        assert!(dir_kib(dir.path()) >= 64);
        assert_eq!(dir_kib(&dir.path().join("missing")), 0);
    }
}
