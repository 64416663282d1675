//! What a node may print: Maelstrom's rules for a stdout line.

use serde_json::Value;

/// A line that broke the rules: which node, the line, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub node: String,
    pub line: String,
    pub problem: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "node {} printed {}: {}",
            self.node, self.line, self.problem
        )
    }
}

impl std::error::Error for BadLine {}

/// A line as printed, shortened for an error message.
pub fn shown(line: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(&line[..line.len().min(MAX)]);
    let more = if line.len() > MAX {
        format!("... ({} bytes)", line.len())
    } else {
        String::new()
    };
    format!("{:?}{more}", text)
}

/// Checks one stdout line of node `node`: a JSON object with `src` equal to
/// the node's id, a `dest` that exists, and a `body` object with a string
/// `type`. Returns the parsed message.
pub fn check_line(
    node: &str,
    line: &[u8],
    dest_exists: impl Fn(&str) -> bool,
) -> Result<Value, BadLine> {
    let bad = |problem: String| BadLine {
        node: node.to_string(),
        line: shown(line),
        problem,
    };
    let msg: Value = serde_json::from_slice(line).map_err(|e| {
        bad(format!(
            "not a JSON message ({e}); stdout is for messages only, log to stderr"
        ))
    })?;
    let Some(obj) = msg.as_object() else {
        return Err(bad("not a JSON object".into()));
    };
    let src = obj
        .get("src")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no string `src`".into()))?;
    if src != node {
        return Err(bad(format!("`src` is {src:?}, but this node is {node:?}")));
    }
    let dest = obj
        .get("dest")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no string `dest`".into()))?;
    if !dest_exists(dest) {
        return Err(bad(format!("`dest` {dest:?} does not exist")));
    }
    let body = obj
        .get("body")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no object `body`".into()))?;
    if !body.get("type").is_some_and(Value::is_string) {
        return Err(bad("the body has no string `type`".into()));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(line: &str) -> Result<Value, BadLine> {
        check_line("n1", line.as_bytes(), |d| {
            d == "n2" || d == "c1" || d == "seq-kv"
        })
    }

    #[test]
    fn a_good_line_passes() {
        assert!(
            check(r#"{"src":"n1","dest":"c1","body":{"type":"add_ok","in_reply_to":1}}"#).is_ok()
        );
    }

    #[test]
    fn each_rule_names_the_node_and_the_problem() {
        let cases = [
            ("hello", "not a JSON message"),
            ("[1]", "not a JSON object"),
            (r#"{"dest":"c1","body":{"type":"x"}}"#, "no string `src`"),
            (
                r#"{"src":"n2","dest":"c1","body":{"type":"x"}}"#,
                "this node is \"n1\"",
            ),
            (
                r#"{"src":"n1","dest":"n9","body":{"type":"x"}}"#,
                "does not exist",
            ),
            (r#"{"src":"n1","dest":"c1","body":{}}"#, "no string `type`"),
            (r#"{"src":"n1","dest":"c1"}"#, "no object `body`"),
        ];
        for (line, problem) in cases {
            let err = check(line).unwrap_err();
            assert_eq!(err.node, "n1");
            assert!(err.problem.contains(problem), "{line}: {}", err.problem);
            assert!(err.to_string().contains("node n1 printed"), "{err}");
        }
    }
}
