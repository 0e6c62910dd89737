//! `image` (CLAIMS C7, container model only): images are layers and a rebuild makes
//! only the changed ones. The engine builds a two-layer image (`COPY workload`, then
//! `COPY data`), the data changes, and it builds again: `layers_total` is the number of
//! layers of the rebuilt image, `layers_reused_on_rebuild` how many the engine took
//! from its build cache (its `--> Using cache` lines).

use std::path::Path;
use std::process::Command;

use super::{Ctx, Measured, Params, Scenario};
use crate::models::Model;

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

    fn skip_for(&self, model: &dyn Model) -> Option<String> {
        (model.name() != "container")
            .then(|| "a claim about isolab's engine images, measured on the container model".into())
    }

    fn sample(&self, ctx: &Ctx<'_>, _params: &Params) -> Result<Measured, String> {
        let dir = ctx
            .scratch
            .join(format!("image-claim-{}", super::next_id()));
        let outcome = rebuild(ctx, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        let (first, second) = outcome?;
        let mut m = Measured::default();
        let (new1, reused1) = count_layers(&first);
        let (new2, reused2) = count_layers(&second);
        m.metric("layers_first_build", (new1 + reused1) as f64, "layers");
        m.metric("layers_total", (new2 + reused2) as f64, "layers");
        m.metric("layers_reused_on_rebuild", reused2 as f64, "layers");
        m.facts.insert(
            "starts".into(),
            "first/next container start and disk are not measured yet: they need `engine run`"
                .into(),
        );
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
}
