//! `report.html`: the markdown report rendered to one self-contained page, with the
//! plots inlined as SVG and the style inline, so it opens anywhere with no other file.

use pulldown_cmark::{html, Options, Parser};

use super::plots::Plot;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
table{border-collapse:collapse;margin:0.5em 0 1.2em;font-size:0.88em;display:block;overflow-x:auto}\
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}\
code{font-size:0.92em;background:#f4f4f4;padding:0 3px}td code{font-size:0.8em;word-break:break-all}\
h2{border-bottom:2px solid #ddd;padding-bottom:3px;margin-top:2em}\
svg{max-width:100%;height:auto;border:1px solid #eee}\
.holds{color:#1a7f37}.nuance{color:#9a6700}.fails{color:#cf222e}.unmeasured{color:#57606a}";

/// The page: the markdown as HTML, each plot image replaced by its SVG.
pub(crate) fn render(markdown: &str, plots: &[Plot]) -> String {
    let mut body = String::new();
    html::push_html(&mut body, Parser::new_ext(markdown, Options::ENABLE_TABLES));
    for p in plots {
        body = inline_plot(&body, p);
    }
    for (text, class) in [
        ("holds with a nuance", "nuance"),
        ("does not hold on this host", "fails"),
        ("not measured here", "unmeasured"),
        ("holds", "holds"),
    ] {
        body = body.replace(
            &format!("<strong>{text}</strong>"),
            &format!("<strong class=\"{class}\">{text}</strong>"),
        );
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>isolab report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n"
    )
}

/// Replaces the `<img>` of a plot's SVG file with the SVG itself.
fn inline_plot(body: &str, plot: &Plot) -> String {
    let needle = format!("<img src=\"plots/{}.svg\"", plot.name);
    let Some(start) = body.find(&needle) else {
        return body.to_owned();
    };
    let Some(len) = body[start..].find("/>") else {
        return body.to_owned();
    };
    let svg = plot.svg_text.trim_start_matches(|c| c != '<').to_owned();
    let svg = strip_xml_declaration(&svg);
    format!(
        "{}<figure>{svg}</figure>{}",
        &body[..start],
        &body[start + len + 2..]
    )
}

fn strip_xml_declaration(svg: &str) -> &str {
    match (svg.starts_with("<?xml"), svg.find("?>")) {
        (true, Some(end)) => svg[end + 2..].trim_start(),
        _ => svg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_inlined_and_verdicts_styled() {
        let plot = Plot {
            name: "density",
            title: "Density".into(),
            svg: "plots/density.svg".into(),
            png: "plots/density.png".into(),
            svg_text: "<svg xmlns=\"http://www.w3.org/2000/svg\"><text>microvm</text></svg>".into(),
        };
        let page = render(
            "# r\n\n![Density](plots/density.svg)\n\n**holds with a nuance**\n",
            &[plot],
        );
        assert!(page.contains("<figure><svg"), "{page}");
        assert!(!page.contains("<img"), "no external image remains: {page}");
        assert!(page.contains("class=\"nuance\""));
    }
}
