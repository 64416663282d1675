//! The results directory of a test: `store/g-counter/<timestamp>/` with
//! `results.json`, `history.jsonl`, `node-logs/`, plots and `index.html`,
//! and `store/latest` pointing at it.

use super::run::{NetObserved, TestRun};
use crate::faults;
use crate::history::{History, OpKind, Operation};
use crate::page::{self, OpView};
use crate::stats::Quantiles;
use serde_json::{json, Value};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Makes `<store>/<workload>/<timestamp>/` and points `<store>/latest` at it.
pub fn new_run_dir(store: &Path, workload: &str) -> io::Result<PathBuf> {
    let stamp = timestamp(SystemTime::now());
    let mut dir = store.join(workload).join(&stamp);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = store.join(workload).join(format!("{stamp}-{n}"));
    }
    std::fs::create_dir_all(&dir)?;
    let latest = store.join("latest");
    let _ = std::fs::remove_file(&latest);
    if let Ok(rel) = dir.strip_prefix(store) {
        symlink_dir(rel, &latest)?;
    }
    Ok(dir)
}

#[cfg(unix)]
fn symlink_dir(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink_dir(target: &Path, link: &Path) -> io::Result<()> {
    std::fs::write(link, target.to_string_lossy().as_bytes())
}

/// `YYYYMMDDTHHMMSS.mmmZ` in UTC.
fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil-from-days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// The history as the page draws it.
pub fn op_views(history: &History) -> Vec<OpView> {
    views(history.iter())
}

/// What the page plots: every operation, or a long run's sample, and how
/// many operations each stands for.
fn plotted(run: &TestRun) -> (Vec<OpView>, u64) {
    match &run.spilled {
        Some(s) => (views(s.sample.iter()), s.stride),
        None => (op_views(&run.history), 1),
    }
}

fn views<'a>(ops: impl Iterator<Item = &'a Operation>) -> Vec<OpView> {
    ops.map(|op| OpView {
        client: op.client.clone(),
        kind: op.kind.name().to_string(),
        start: op.invoke.as_secs_f64(),
        end: op.complete.map(|c| c.as_secs_f64()),
        outcome: op.outcome.map_or("info", |o| o.name()).to_string(),
        value: match op.kind {
            OpKind::Add => op.delta,
            OpKind::Read => op.value,
        },
    })
    .collect()
}

fn quantiles(q: &Option<Quantiles>) -> String {
    match q {
        Some(q) => format!(
            "p50 {:.2} / p95 {:.2} / p99 {:.2} / max {:.2} ms",
            q.p50, q.p95, q.p99, q.max
        ),
        None => "no completed operations".into(),
    }
}

fn ratio(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}

/// What a results file says about traffic the runner did not see.
pub const NOT_OBSERVED: &str =
    "not observed: servers talk to each other and to the KV service on sockets the runner does not see";

/// `net` for `results.json`: Maelstrom's counts, with `observed` saying
/// which traffic they cover. When the runner saw client traffic only, the
/// counts that need the rest (`all`, `servers`) are null, never guessed.
fn net_json(run: &TestRun) -> Value {
    match run.net_observed {
        NetObserved::All => {
            let mut net = json!(run.stats.net);
            net["observed"] = "all".into();
            net
        }
        NetObserved::ClientsOnly => json!({
            "observed": "clients only",
            "note": format!("client requests and replies, counted at the runner's end of each connection; \
                     server traffic {NOT_OBSERVED}"),
            "all": Value::Null,
            "clients": run.stats.net.clients,
            "servers": Value::Null,
        }),
    }
}

/// `results.json`: the verdict, the checker's findings, the statistics.
pub fn results_json(run: &TestRun, settings: &Value) -> Value {
    let explanation = run.explain();
    results_with(run, settings, explanation.as_ref())
}

fn results_with(
    run: &TestRun,
    settings: &Value,
    explanation: Option<&crate::explain::Explanation>,
) -> Value {
    let verdict = run.check.verdict.name();
    let dropped = match run.net_observed {
        NetObserved::All => json!(run.dropped),
        NetObserved::ClientsOnly => Value::Null,
    };
    json!({
        "valid": verdict == "valid",
        "verdict": verdict,
        "interrupted": run.interrupted,
        "settings": settings,
        "workload": run.check,
        "stats": run.stats.ops,
        "net": net_json(run),
        "latency_ms": run.stats.latency_ms,
        "read_lag": run.stats.read_lag,
        "nemesis": run.nemesis,
        "faults": {
            "windows": faults::windows(&run.nemesis, run_end(run)),
            "kills": faults::kills(&run.history, &run.nemesis),
        },
        "dropped_by_partitions": dropped,
        "lost_with_killed_nodes": run.lost_to_kills,
        "replies": run.replies,
        "warnings": run.replies.warnings(),
        "explanation": explanation,
        "trace": trace_json(&run.trace),
        "elapsed_s": run.elapsed.as_secs_f64(),
    })
}

/// `trace` for `results.json`: where the messages are and whether the
/// cap cut them.
fn trace_json(trace: &crate::testcore::Trace) -> Value {
    let mut t = json!({
        "file": "messages.jsonl",
        "messages": trace.entries.len(),
        "cap": trace.cap,
        "cut": trace.cut,
    });
    if trace.cut > 0 {
        t["note"] = format!(
            "the trace keeps the first {} messages; {} later ones are not in messages.jsonl",
            trace.entries.len(),
            trace.cut
        )
        .into();
    }
    t
}

/// Writes everything but the node logs (the runner wrote those).
pub fn write_results(
    dir: &Path,
    run: &TestRun,
    settings: &Value,
    nodes: &[String],
) -> io::Result<()> {
    let explanation = run.explain();
    let results = results_with(run, settings, explanation.as_ref());
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    if !run.history_written {
        std::fs::write(dir.join("history.jsonl"), run.history.to_jsonl())?;
    }
    let mut messages = io::BufWriter::new(std::fs::File::create(dir.join("messages.jsonl"))?);
    run.trace.write_jsonl(&mut messages)?;
    io::Write::flush(&mut messages)?;
    let (ops, stride) = plotted(run);
    let windows = faults::windows(&run.nemesis, run_end(run));
    let (drawn, sampled) = page::sample(&ops, page::DRAWN_OPS);
    let raw_caption = match (&sampled, &run.spilled) {
        (_, Some(_)) => format!(
            "Latency of operations over time ({} drawn of a sample of 1 in {stride} of {} operations; \
             history.jsonl has them all)",
            drawn.len(),
            run.stats.ops.all.count,
        ),
        (Some(note), None) => format!("Latency of operations over time ({note})"),
        (None, None) => "Latency of every operation over time".to_string(),
    };
    let plots = [
        (
            "latency-raw.svg",
            raw_caption.as_str(),
            page::latency_over_time(&drawn, &windows),
        ),
        (
            "latency-quantiles.svg",
            "Latency quantiles per second",
            page::latency_quantiles(&ops, &windows),
        ),
        (
            "rate.svg",
            "Requests started per second",
            page::request_rate_sampled(&ops, &windows, stride),
        ),
    ];
    for (file, _, svg) in &plots {
        std::fs::write(dir.join(file), svg)?;
    }
    let c = &run.check;
    let s = &run.stats;
    let acceptable = crate::report::ranges(&c.acceptable);
    let finals: Vec<String> = c
        .final_reads
        .iter()
        .map(|r| format!("{}@{}: {}", r.client, r.node, r.value))
        .collect();
    let logs: Vec<String> = nodes.iter().map(|n| format!("node-logs/{n}.log")).collect();
    let observed = run.net_observed == NetObserved::All;
    let unseen = |shown: String| {
        if observed {
            shown
        } else {
            NOT_OBSERVED.to_string()
        }
    };
    let per_op = |v: Option<f64>| {
        v.map_or("-".into(), |v| {
            format!("{} messages per operation", ratio(Some(v)))
        })
    };
    let mut figures = vec![
        ("verdict".to_string(), c.verdict.name().to_string()),
        ("acknowledged sum".into(), page::increments(c.definite_sum)),
        (
            "indeterminate adds".into(),
            format!(
                "{} add(s), deltas summing to {}",
                c.indeterminate_adds,
                page::increments(c.indeterminate_sum)
            ),
        ),
        ("acceptable final values".into(), acceptable),
        ("final reads".into(), finals.join("; ")),
        ("lost".into(), page::increments(c.lost)),
    ];
    if let Some((read, above)) = crate::explain::above_acceptable(c) {
        figures.push((
            "over".into(),
            format!(
                "{} ({}'s final read of {} on {} is above every acceptable value)",
                page::increments(above),
                read.client,
                read.value,
                read.node
            ),
        ));
    }
    if let Some(reason) = crate::explain::unknown_reason(c) {
        figures.push(("why unknown".into(), reason));
    }
    figures.extend([
        ("faults".into(), fault_summary(&windows)),
        (
            "operations ok / info / fail".into(),
            format!("{} / {} / {}", s.ops.all.ok, s.ops.all.info, s.ops.all.fail),
        ),
        (
            "msgs-per-op (all)".into(),
            unseen(per_op(s.net.all.msgs_per_op)),
        ),
        (
            "msgs-per-op (servers)".into(),
            unseen(per_op(s.net.servers.msgs_per_op)),
        ),
        (
            "read lag".into(),
            s.read_lag.map_or("no successful read".into(), |l| l.line()),
        ),
        ("add latency".into(), quantiles(&s.latency_ms.add)),
        ("read latency".into(), quantiles(&s.latency_ms.read)),
        ("nemesis events".into(), run.nemesis.len().to_string()),
        (
            "messages dropped by partitions".into(),
            unseen(format!("{} message(s)", run.dropped)),
        ),
        ("node logs".into(), logs.join(", ")),
        (
            "files".into(),
            "results.json, history.jsonl, messages.jsonl, latency-raw.svg, latency-quantiles.svg, rate.svg".into(),
        ),
    ]);
    let warnings = run.replies.warnings();
    if !warnings.is_empty() {
        let mut text = warnings.join("; ");
        if let Some(example) = run.replies.examples.first() {
            text.push_str(&format!("; first {example}"));
        }
        figures.insert(1, ("warnings".into(), text));
    }
    if run.interrupted {
        figures.insert(
            1,
            (
                "interrupted".into(),
                "Ctrl-C stopped the run: what follows is the history up to then, not judged".into(),
            ),
        );
    }
    if let Some(note) = sampled {
        figures.push(("timeline and raw latency plot".into(), note));
    }
    let inline: Vec<(&str, String)> = plots
        .iter()
        .map(|(_, caption, svg)| (*caption, svg.clone()))
        .collect();
    let html = page::index_html(
        "g-counter test",
        c.verdict.name(),
        &super::ran::settings_rows(settings),
        &figures,
        &inline,
        &drawn,
        &windows,
        &explanation.map_or(String::new(), |e| page::why_section(&e, &run.trace, c)),
    );
    std::fs::write(dir.join("index.html"), html)
}

/// When the last operation ended: the end of the fault windows.
fn run_end(run: &TestRun) -> std::time::Duration {
    let kept = run
        .history
        .iter()
        .filter_map(|op| op.complete.or(Some(op.invoke)))
        .max()
        .unwrap_or_default();
    run.spilled.as_ref().map_or(kept, |s| s.end.max(kept))
}

/// Every fault window on one line, or `none`.
pub fn fault_summary(windows: &[faults::FaultWindow]) -> String {
    if windows.is_empty() {
        return "none".into();
    }
    let shown: Vec<String> = windows
        .iter()
        .map(|w| format!("{} ({:.1}-{:.1} s)", w.label, w.start, w.end))
        .collect();
    shown.join("; ")
}

/// Records a test that could not be judged: the error, for the page and
/// for `results.json`.
pub fn write_error(dir: &Path, error: &str, settings: &Value) -> io::Result<()> {
    let tails = log_tails(&dir.join("node-logs"));
    let results = json!({
        "valid": Value::Null,
        "verdict": "unknown",
        "error": error,
        "settings": settings,
        "stderr_tails": tails.iter().cloned().collect::<serde_json::Map<String, Value>>(),
    });
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&results)? + "\n",
    )?;
    let mut figures = vec![("error".to_string(), error.to_string())];
    for (node, tail) in &tails {
        if let Some(text) = tail.as_str() {
            figures.push((format!("{node}: the end of its stderr"), text.to_string()));
        }
    }
    std::fs::write(
        dir.join("index.html"),
        page::index_html(
            "g-counter test",
            "unknown",
            &super::ran::settings_rows(settings),
            &figures,
            &[],
            &[],
            &[],
            "",
        ),
    )
}

/// The last lines of every node's log in `logs` (`n0.log` -> `n0`), at
/// most [`TAIL_BYTES`] each: what a node said before a run broke is the
/// first thing to read, and the page should show it without a terminal.
pub(super) fn log_tails(logs: &Path) -> Vec<(String, Value)> {
    let Ok(entries) = std::fs::read_dir(logs) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|path| {
            let node = path.file_stem()?.to_string_lossy().into_owned();
            let tail = with_reason(&path, tail(&path).ok()?);
            (!tail.is_empty()).then_some((node, Value::String(tail)))
        })
        .collect()
}

/// What stands for the lines left out between a crash's reason and the
/// end of the log.
const ELIDED: &str = "...";

/// The index of the last line of `lines` that says why a program died,
/// and how many lines it takes: Go's `panic: ...` or `fatal error: ...`
/// (above the goroutine dump that fills the end of the log), Rust's
/// `thread '...' panicked at <place>:` (the message is on the next line)
/// and Java's `Exception in thread ...`. Python's reason is the last line
/// of its traceback, which the end of the log shows anyway.
fn reason_at(lines: &[&str]) -> Option<(usize, usize)> {
    let i = lines.iter().rposition(|l| {
        l.starts_with("panic: ")
            || l.starts_with("fatal error: ")
            || l.starts_with("Exception in thread ")
            || (l.starts_with("thread '") && l.contains(" panicked at "))
    })?;
    let rust_message_below = lines[i].starts_with("thread '") && lines[i].ends_with(':');
    Some((
        i,
        if rust_message_below && i + 1 < lines.len() {
            2
        } else {
            1
        },
    ))
}

/// `tail`, with the line that says why the node died (and the line after
/// it, for Rust) put above it when the tail does not hold it: a long
/// goroutine dump pushes Go's `panic:` line out of any short tail.
fn with_reason(path: &Path, tail: String) -> String {
    let lines: Vec<&str> = tail.lines().collect();
    if reason_at(&lines).is_some() {
        return tail;
    }
    let Ok(text) = std::fs::read(path) else {
        return tail;
    };
    let text = String::from_utf8_lossy(&text);
    let all: Vec<&str> = text.lines().collect();
    match reason_at(&all) {
        Some((i, n)) => format!("{}\n{ELIDED}\n{tail}", all[i..i + n].join("\n")),
        None => tail,
    }
}

/// The last `last` lines of a log's tail, with the line that says why the
/// node died above them when it is further up.
pub(super) fn excerpt(text: &str, last: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(last);
    let mut out = Vec::new();
    if let Some((i, n)) = reason_at(&lines).filter(|(i, _)| *i < start) {
        let end = (i + n).min(start);
        out.extend(&lines[i..end]);
        // One marker for the gap (it covers `with_reason`'s own, if any).
        if end < start {
            out.push(ELIDED);
        }
    }
    out.extend(&lines[start..]);
    out
}

/// The most of a log's end [`log_tails`] reads.
const TAIL_BYTES: u64 = 4096;

/// The last lines of `path`, from at most its last [`TAIL_BYTES`] (a
/// first partial line dropped), decoded leniently.
fn tail(path: &Path) -> io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let text = match (start > 0, text.find('\n')) {
        (true, Some(i)) => &text[i + 1..],
        _ => &text[..],
    };
    Ok(text.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_shows_the_line_that_says_why_above_the_tail() {
        let dir = std::env::temp_dir().join(format!("gcounter-panic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut log = String::from(
            "n0: started\npanic: runtime error: index out of range [3] with length 3\n\n",
        );
        for g in 0..200 {
            log.push_str(&format!("goroutine {g} [running]:\n\tmain.go:{g} +0x1d\n"));
        }
        log.push_str("exit status 2\n");
        std::fs::write(dir.join("n0.log"), &log).unwrap();
        let tails = log_tails(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        let text = tails[0].1.as_str().unwrap();
        assert!(text.starts_with("panic: runtime error"), "{text}");
        assert_eq!(
            excerpt(text, 3),
            [
                "panic: runtime error: index out of range [3] with length 3",
                "...",
                "goroutine 199 [running]:",
                "\tmain.go:199 +0x1d",
                "exit status 2"
            ]
        );
        // Rust's message is on the line after its place.
        let rust =
            "thread 'main' panicked at src/main.rs:3:5:\nattempt to add with overflow\na\nb\nc";
        assert_eq!(
            excerpt(rust, 2),
            [
                "thread 'main' panicked at src/main.rs:3:5:",
                "attempt to add with overflow",
                "...",
                "b",
                "c"
            ]
        );
        // A reason among the last lines is shown once, in place.
        assert_eq!(excerpt("x\npanic: boom\ny", 2), ["panic: boom", "y"]);
    }

    #[test]
    fn a_log_tail_is_the_end_of_the_log_in_whole_lines() {
        let dir = std::env::temp_dir().join(format!("gcounter-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let long: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(dir.join("n0.log"), &long).unwrap();
        std::fs::write(dir.join("n1.log"), "").unwrap();
        std::fs::write(dir.join("notes.txt"), "not a log").unwrap();
        let tails = log_tails(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(tails.len(), 1, "{tails:?}");
        let text = tails[0].1.as_str().unwrap();
        assert!(text.ends_with("line 1999"), "{text}");
        assert!(text.starts_with("line "), "{text}");
        assert!(text.len() as u64 <= TAIL_BYTES);
    }
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(timestamp(t), "20261118T110640.123Z");
        assert_eq!(timestamp(UNIX_EPOCH), "19700101T000000.000Z");
    }
}
