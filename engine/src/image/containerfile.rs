//! The Containerfile subset isolab builds: `FROM scratch|IMAGE`, `COPY`, `ADD`, `ENV`,
//! `WORKDIR`, `ENTRYPOINT`, `CMD`, `LABEL` and `RUN`, with `\` line continuations,
//! `#` comments, exec (`["a","b"]`) and shell forms, and quoted `KEY=VALUE` pairs.

/// Why a Containerfile cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContainerfileError {
    #[error("Containerfile line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("Containerfile is empty: it needs at least a FROM line")]
    Empty,
}

/// One instruction, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `FROM scratch` is `From(None)`.
    From(Option<String>),
    Copy {
        sources: Vec<String>,
        dest: String,
    },
    /// Like `Copy`, but local tar archives are unpacked at `dest`.
    Add {
        sources: Vec<String>,
        dest: String,
    },
    Env(Vec<(String, String)>),
    Workdir(String),
    Entrypoint(Vec<String>),
    Cmd(Vec<String>),
    Label(Vec<(String, String)>),
    Run(Vec<String>),
}

/// An instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// 1-based line of the instruction's first line.
    pub line: usize,
    /// The instruction as written (continuations joined), shown in build output and
    /// hashed into the build cache key.
    pub text: String,
    pub instruction: Instruction,
}

/// Parses a whole Containerfile.
pub fn parse(text: &str) -> Result<Vec<Step>, ContainerfileError> {
    let steps = logical_lines(text)
        .into_iter()
        .map(|(line, text)| {
            parse_line(line, &text).map(|instruction| Step {
                line,
                text,
                instruction,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_structure(&steps)?;
    Ok(steps)
}

/// Joins `\`-continued lines and drops comments and blank lines.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_none()) {
            continue;
        }
        let (body, continues) = match trimmed.strip_suffix('\\') {
            Some(body) => (body.trim_end(), true),
            None => (trimmed, false),
        };
        let entry = current.get_or_insert_with(|| (i + 1, String::new()));
        if !entry.1.is_empty() && !body.is_empty() {
            entry.1.push(' ');
        }
        entry.1.push_str(body);
        if !continues {
            out.extend(current.take().filter(|(_, t)| !t.is_empty()));
        }
    }
    out.extend(current.filter(|(_, t)| !t.is_empty()));
    out
}

fn check_structure(steps: &[Step]) -> Result<(), ContainerfileError> {
    let first = steps.first().ok_or(ContainerfileError::Empty)?;
    if !matches!(first.instruction, Instruction::From(_)) {
        return Err(syntax(first.line, "the first instruction must be FROM"));
    }
    if let Some(again) = steps[1..]
        .iter()
        .find(|s| matches!(s.instruction, Instruction::From(_)))
    {
        return Err(syntax(
            again.line,
            "multi-stage builds (a second FROM) are not supported",
        ));
    }
    Ok(())
}

fn syntax(line: usize, message: impl Into<String>) -> ContainerfileError {
    ContainerfileError::Syntax {
        line,
        message: message.into(),
    }
}

fn parse_line(line: usize, text: &str) -> Result<Instruction, ContainerfileError> {
    let (keyword, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let rest = rest.trim();
    let keyword = keyword.to_ascii_uppercase();
    if rest.is_empty() {
        return Err(syntax(line, format!("{keyword} needs arguments")));
    }
    match keyword.as_str() {
        "FROM" => parse_from(line, rest),
        "COPY" | "ADD" => parse_copy(line, &keyword, rest),
        "ENV" => parse_pairs(line, rest, true).map(Instruction::Env),
        "LABEL" => parse_pairs(line, rest, false).map(Instruction::Label),
        "WORKDIR" => Ok(Instruction::Workdir(single_word(line, rest)?)),
        "ENTRYPOINT" => command(line, rest).map(Instruction::Entrypoint),
        "CMD" => command(line, rest).map(Instruction::Cmd),
        "RUN" => command(line, rest).map(Instruction::Run),
        other => Err(syntax(
            line,
            format!(
                "unsupported instruction {other} (supported: FROM, COPY, ADD, ENV, WORKDIR, \
                 ENTRYPOINT, CMD, LABEL, RUN)"
            ),
        )),
    }
}

fn parse_from(line: usize, rest: &str) -> Result<Instruction, ContainerfileError> {
    let words = words(line, rest)?;
    match words.as_slice() {
        [image] if image == "scratch" => Ok(Instruction::From(None)),
        [image] => Ok(Instruction::From(Some(image.clone()))),
        [_, as_kw, _] if as_kw.eq_ignore_ascii_case("as") => Err(syntax(
            line,
            "multi-stage builds (FROM ... AS name) are not supported",
        )),
        _ => Err(syntax(line, "FROM takes one image name, or scratch")),
    }
}

fn parse_copy(line: usize, keyword: &str, rest: &str) -> Result<Instruction, ContainerfileError> {
    let mut words = if rest.starts_with('[') {
        exec_form(line, rest)?
    } else {
        words(line, rest)?
    };
    if let Some(flag) = words.iter().find(|w| w.starts_with("--")) {
        return Err(syntax(
            line,
            format!("{keyword} option {flag} is not supported"),
        ));
    }
    if words.len() < 2 {
        return Err(syntax(
            line,
            format!("{keyword} needs at least one source and a destination"),
        ));
    }
    let dest = words.pop().expect("len checked");
    Ok(match keyword {
        "ADD" => Instruction::Add {
            sources: words,
            dest,
        },
        _ => Instruction::Copy {
            sources: words,
            dest,
        },
    })
}

/// `KEY=VALUE ...` pairs; `ENV KEY VALUE...` (legacy form) when `legacy` allows it.
fn parse_pairs(
    line: usize,
    rest: &str,
    legacy: bool,
) -> Result<Vec<(String, String)>, ContainerfileError> {
    let words = words(line, rest)?;
    if legacy && !words[0].contains('=') {
        let (key, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return Ok(vec![(valid_key(line, key)?, value.trim().to_string())]);
    }
    words
        .iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| syntax(line, format!("expected KEY=VALUE, found {w:?}")))?;
            Ok((valid_key(line, k)?, v.to_string()))
        })
        .collect()
}

fn valid_key(line: usize, key: &str) -> Result<String, ContainerfileError> {
    if key.is_empty() {
        return Err(syntax(line, "empty key in KEY=VALUE"));
    }
    Ok(key.to_string())
}

fn single_word(line: usize, rest: &str) -> Result<String, ContainerfileError> {
    match words(line, rest)?.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(syntax(line, "expected exactly one path")),
    }
}

/// Exec form (a JSON array) as is; shell form becomes `/bin/sh -c "..."`.
fn command(line: usize, rest: &str) -> Result<Vec<String>, ContainerfileError> {
    if rest.starts_with('[') {
        return exec_form(line, rest);
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

fn exec_form(line: usize, rest: &str) -> Result<Vec<String>, ContainerfileError> {
    serde_json::from_str(rest).map_err(|e| syntax(line, format!("invalid JSON array {rest}: {e}")))
}

/// Splits on whitespace, honouring "double" and 'single' quotes and `\` escapes.
fn words(line: usize, text: &str) -> Result<Vec<String>, ContainerfileError> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', q) if q != Some('\'') => {
                let next = chars
                    .next()
                    .ok_or_else(|| syntax(line, "trailing backslash"))?;
                word.get_or_insert_with(String::new).push(next);
            }
            (q @ ('"' | '\''), None) => {
                quote = Some(q);
                word.get_or_insert_with(String::new);
            }
            (c, Some(q)) if c == q => quote = None,
            (c, None) if c.is_whitespace() => out.extend(word.take()),
            (c, _) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quote.is_some() {
        return Err(syntax(line, "unterminated quote"));
    }
    out.extend(word);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instruction_parses() {
        let text = "# a comment\nfrom scratch\nCOPY a b /dst/\nADD x.tar /\nENV A=1 B=\"two words\"\n\
                    ENV LEGACY some value\nWORKDIR /app\nENTRYPOINT [\"/w\", \"ready\"]\nCMD echo hi\n\
                    LABEL org.x=\"y z\"\nRUN apk add \\\n    curl\n";
        let steps = parse(text).unwrap();
        let got: Vec<_> = steps.iter().map(|s| s.instruction.clone()).collect();
        assert_eq!(
            got,
            vec![
                Instruction::From(None),
                Instruction::Copy {
                    sources: vec!["a".into(), "b".into()],
                    dest: "/dst/".into()
                },
                Instruction::Add {
                    sources: vec!["x.tar".into()],
                    dest: "/".into()
                },
                Instruction::Env(vec![
                    ("A".into(), "1".into()),
                    ("B".into(), "two words".into())
                ]),
                Instruction::Env(vec![("LEGACY".into(), "some value".into())]),
                Instruction::Workdir("/app".into()),
                Instruction::Entrypoint(vec!["/w".into(), "ready".into()]),
                Instruction::Cmd(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()]),
                Instruction::Label(vec![("org.x".into(), "y z".into())]),
                Instruction::Run(vec!["/bin/sh".into(), "-c".into(), "apk add curl".into()]),
            ]
        );
        assert_eq!(
            steps[9].line, 11,
            "a continued instruction reports its first line"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("FROM scratch\nFROBNICATE x\n").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("Containerfile line 2: unsupported instruction FROBNICATE"));
        let err = parse("COPY a /b\n").unwrap_err();
        assert_eq!(err, syntax(1, "the first instruction must be FROM"));
        assert!(parse("FROM scratch\nCOPY onlyone\n").is_err());
        assert!(parse("FROM scratch\nCMD [\"unterminated\"\n").is_err());
        assert!(parse("FROM scratch\nENV A=\"open\n").is_err());
        assert!(parse("FROM a AS b\n").is_err());
        assert!(parse("FROM scratch\nFROM scratch\n").is_err());
        assert!(parse("FROM scratch\nCOPY --chown=1:1 a /b\n").is_err());
        assert_eq!(parse("\n# nothing\n"), Err(ContainerfileError::Empty));
    }
}
