//! The HTML report: every run of a results directory side by side, grouped by
//! scenario, with the table of figures and each run's timeline inline.

use crate::run::RunResult;
use std::collections::BTreeMap;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.0}")).unwrap_or_else(|| "—".into())
}

/// One markdown-ready row per run.
pub fn table_rows(runs: &[RunResult]) -> Vec<[String; 12]> {
    runs.iter()
        .map(|r| {
            let f = &r.figures;
            let mut proto = if r.spec.protocol == "consumer" {
                format!("consumer ({})", r.spec.assignor)
            } else {
                r.spec.protocol.clone()
            };
            if r.spec.client != "librdkafka" {
                proto = format!("{proto}, {}", r.spec.client);
            }
            [
                r.spec.scenario.name().to_string(),
                r.broker.clone(),
                proto,
                format!("{}/{}", r.spec.members, r.spec.partitions),
                opt(f.jts_ms),
                opt(f.last_assignment_change_ms),
                format!("{:.2}", f.unavailability_partition_s),
                format!("{:.0}", f.worst_gap_ms),
                f.duplicates.to_string(),
                f.missing.to_string(),
                f.double_ownership.to_string(),
                f.group_requests_per_member_s
                    .map(|x| format!("{x:.2}"))
                    .unwrap_or_else(|| "—".into()),
            ]
        })
        .collect()
}

pub const HEADERS: [&str; 12] = [
    "scenario",
    "broker",
    "protocol",
    "members/partitions",
    "join-to-steady ms",
    "last assignment change ms",
    "unavailable partition-s",
    "worst gap ms",
    "duplicates",
    "missing",
    "double ownership",
    "group requests/member/s",
];

pub fn markdown(runs: &[RunResult]) -> String {
    let mut s = format!(
        "| {} |\n|{}\n",
        HEADERS.join(" | "),
        "---|".repeat(HEADERS.len())
    );
    for row in table_rows(runs) {
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
    s
}

pub fn html(runs: &[RunResult]) -> String {
    let mut runs: Vec<&RunResult> = runs.iter().collect();
    runs.sort_by_key(|r| {
        (
            r.spec.scenario.name(),
            r.spec.protocol.clone(),
            r.broker.clone(),
        )
    });
    let mut s = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Cohort rebalance lab</title><style>\
         body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
         td:nth-child(-n+3),th{text-align:left}.bad{color:#c62828;font-weight:bold}</style></head><body><h1>Rebalance lab</h1>",
    );
    if let Some(r) = runs.first() {
        let _ = write!(
            s,
            "<p>Members: {}. Machine: {} CPUs, {}, {}, Linux {}.</p>",
            esc(&r.client),
            r.machine.cpus,
            esc(&r.machine.cpu),
            esc(&r.machine.os),
            esc(&r.machine.kernel)
        );
    }
    s.push_str("<table><tr>");
    for h in HEADERS {
        let _ = write!(s, "<th>{h}</th>");
    }
    s.push_str("</tr>");
    let owned: Vec<RunResult> = runs.iter().map(|r| (*r).clone()).collect();
    for (r, row) in runs.iter().zip(table_rows(&owned)) {
        s.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let bad = ((i == 9 || i == 10) && c != "0") || (i == 4 && (c == "—" || !r.converged));
            let _ = write!(
                s,
                "<td{}>{}</td>",
                if bad { " class=\"bad\"" } else { "" },
                esc(c)
            );
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    let mut scenario = "";
    for r in &runs {
        if r.spec.scenario.name() != scenario {
            scenario = r.spec.scenario.name();
            let _ = write!(s, "<h2>{scenario}</h2>");
        }
        let _ = write!(
            s,
            "<h3>{} ({})</h3><details><summary>settings</summary><pre>{}</pre></details>",
            esc(&r.slug()),
            esc(&r.broker_version),
            esc(&serde_json::to_string_pretty(&r.spec).unwrap())
        );
        s.push_str(&crate::svg::render(r));
    }
    s.push_str("</body></html>\n");
    s
}

fn percentile(mut v: Vec<f64>, q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    Some(v[i])
}

/// One row per setup (trials folded): join-to-steady p50 and max, the median
/// unavailability, the worst gap over all trials, and the invariant counts
/// summed.
pub fn summary_markdown(runs: &[RunResult]) -> String {
    let mut groups: BTreeMap<(String, String, String, String), Vec<&RunResult>> = BTreeMap::new();
    for r in runs {
        let mut proto = if r.spec.protocol == "consumer" {
            format!("consumer ({})", r.spec.assignor)
        } else {
            r.spec.protocol.clone()
        };
        if r.spec.static_members {
            proto.push_str(", static");
        }
        if r.spec.client != "librdkafka" {
            proto = format!("{proto}, {}", r.spec.client);
        }
        let key = (
            r.spec.scenario.name().to_string(),
            proto,
            r.broker.clone(),
            format!("{}/{}", r.spec.members, r.spec.partitions),
        );
        groups.entry(key).or_default().push(r);
    }
    let mut s = String::from(
        "| scenario | protocol | broker | members/partitions | trials | join-to-steady p50 ms | max ms | unavailable partition-s (p50) | worst gap ms | duplicates | missing | double ownership | group requests/member/s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for ((scenario, proto, broker, size), rs) in groups {
        let jts: Vec<f64> = rs.iter().filter_map(|r| r.figures.jts_ms).collect();
        let unconverged = rs
            .iter()
            .filter(|r| r.figures.jts_ms.is_none() || !r.converged)
            .count();
        let fmt = |v: Option<f64>| v.map(|x| format!("{x:.0}")).unwrap_or_else(|| "—".into());
        let jts_p50 = if unconverged > 0 {
            format!(
                "{} ({unconverged} not steady)",
                fmt(percentile(jts.clone(), 0.5))
            )
        } else {
            fmt(percentile(jts.clone(), 0.5))
        };
        let u = percentile(
            rs.iter()
                .map(|r| r.figures.unavailability_partition_s)
                .collect(),
            0.5,
        )
        .unwrap_or(0.0);
        let gap = rs
            .iter()
            .map(|r| r.figures.worst_gap_ms)
            .fold(0.0, f64::max);
        let dup: usize = rs.iter().map(|r| r.figures.duplicates).sum();
        let missing: usize = rs.iter().map(|r| r.figures.missing).sum();
        let double: usize = rs.iter().map(|r| r.figures.double_ownership).sum();
        let req = percentile(
            rs.iter()
                .filter_map(|r| r.figures.group_requests_per_member_s)
                .collect(),
            0.5,
        );
        let _ = writeln!(
            s,
            "| {scenario} | {proto} | {broker} | {size} | {} | {jts_p50} | {} | {u:.2} | {gap:.0} | {dup} | {missing} | {double} | {} |",
            rs.len(),
            fmt(percentile(jts, 1.0)),
            req.map(|x| format!("{x:.2}")).unwrap_or_else(|| "—".into())
        );
    }
    s
}
