//! The ceiling for a stdio node: a bare loop that parses each Maelstrom
//! `init`/`add`/`read` line with serde_json and writes the reply, keeping a
//! counter and nothing else. No error handling, no strategy, no async.
//!
//! `bench/stdio-throughput.sh` runs it on the same input as the real node, so
//! the node's throughput can be read as a fraction of what JSON allows:
//!
//! ```sh
//! cargo run --release -p gcounter-core --example json_ceiling < requests.jsonl > /dev/null
//! ```

use serde::Deserialize;
use std::io::{self, BufRead, BufWriter, Write};

#[derive(Deserialize)]
struct Msg<'a> {
    src: &'a str,
    dest: &'a str,
    body: Body<'a>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    ty: &'a str,
    msg_id: u64,
    #[serde(default)]
    delta: u64,
}

fn main() -> io::Result<()> {
    let stdin = io::stdin().lock();
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let mut line = Vec::new();
    let mut input = io::BufReader::with_capacity(64 * 1024, stdin);
    let (mut total, mut next_id) = (0u64, 0u64);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let Ok(msg) = serde_json::from_slice::<Msg<'_>>(&line) else {
            continue;
        };
        let (src, dest, id) = (msg.dest, msg.src, msg.body.msg_id);
        write!(out, r#"{{"src":"{src}","dest":"{dest}","body":{{"type":""#)?;
        match msg.body.ty {
            "add" => {
                total += msg.body.delta;
                write!(out, r#"add_ok","in_reply_to":{id},"msg_id":{next_id}}}}}"#)?;
            }
            "read" => write!(
                out,
                r#"read_ok","in_reply_to":{id},"msg_id":{next_id},"value":{total}}}}}"#
            )?,
            _ => write!(out, r#"init_ok","in_reply_to":{id},"msg_id":{next_id}}}}}"#)?,
        }
        out.write_all(b"\n")?;
        next_id += 1;
    }
    out.flush()
}
