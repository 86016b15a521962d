//! The timeline of one run as SVG: one row per member, time across, colour for
//! consuming, revoking, waiting and idle; the trigger marked; below, every
//! partition gap longer than 100 ms (darker where many partitions wait at once).

use crate::measure::MemberState;
use crate::run::RunResult;
use std::fmt::Write;

const LEFT: f64 = 120.0;
const WIDTH: f64 = 1000.0;
const ROW: f64 = 14.0;

pub fn colour(s: MemberState) -> &'static str {
    match s {
        MemberState::Consuming => "#2e7d32",
        MemberState::Revoking => "#f9a825",
        MemberState::Waiting => "#c62828",
        MemberState::Idle => "#bdbdbd",
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A round tick step giving about eight ticks.
fn tick_step(span_ms: f64) -> f64 {
    let raw = span_ms / 8.0;
    let mag = 10f64.powf(raw.max(1.0).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

pub fn render(r: &RunResult) -> String {
    let tl = &r.timeline;
    let span = tl.end_ms.max(1.0);
    let x = |t: f64| LEFT + (t.clamp(0.0, span) / span) * (WIDTH - LEFT - 10.0);
    let rows = tl.members.len() as f64;
    let top = 62.0;
    let gaps_y = top + rows * ROW + 10.0;
    let height = gaps_y + 40.0 + 50.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11">"#
    );
    let f = &r.figures;
    let jts = f
        .jts_ms
        .map(|j| format!("{j:.0} ms"))
        .unwrap_or_else(|| "not steady".into());
    let _ = write!(
        s,
        r#"<text x="4" y="14" font-size="13" font-weight="bold">{}</text><text x="4" y="30">{} members, {} partitions, {}</text><text x="4" y="45">join-to-steady {jts}, {:.2} partition-s unavailable, worst gap {:.0} ms, {} duplicates, {} missing, {} double ownership</text>"#,
        esc(&r.slug()),
        r.spec.members,
        r.spec.partitions,
        esc(&r.client),
        f.unavailability_partition_s,
        f.worst_gap_ms,
        f.duplicates,
        f.missing,
        f.double_ownership
    );
    for (i, m) in tl.members.iter().enumerate() {
        let y = top + i as f64 * ROW;
        let _ = write!(
            s,
            r#"<text x="4" y="{:.1}">{}</text>"#,
            y + ROW - 3.0,
            esc(&m.name)
        );
        for seg in &m.segments {
            let (a, b) = (x(seg.start_ms), x(seg.end_ms));
            let _ = write!(
                s,
                r#"<rect x="{a:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{:?} {:.0}-{:.0} ms, {} partitions</title></rect>"#,
                y + 1.0,
                (b - a).max(0.5),
                ROW - 2.0,
                colour(seg.state),
                seg.state,
                seg.start_ms,
                seg.end_ms,
                seg.owned
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="4" y="{:.1}">partition gaps</text>"#,
        gaps_y + 24.0
    );
    for (p, a, b) in &tl.gaps {
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{gaps_y:.1}" width="{:.1}" height="36" fill="#c62828" fill-opacity="0.12"><title>partition {p}: {:.0} ms without a delivery</title></rect>"##,
            x(*a),
            (x(*b) - x(*a)).max(0.5),
            b - a
        );
    }
    // The trigger and the time axis.
    let axis = gaps_y + 50.0;
    let _ = write!(
        s,
        r#"<line x1="{t:.1}" y1="{top}" x2="{t:.1}" y2="{axis}" stroke="black" stroke-dasharray="4 3"/><text x="{t:.1}" y="{:.1}" text-anchor="middle">t0</text>"#,
        top - 3.0,
        t = x(tl.t0_ms)
    );
    let step = tick_step(span);
    let mut t = 0.0;
    while t <= span {
        let _ = write!(
            s,
            r#"<line x1="{a:.1}" y1="{axis}" x2="{a:.1}" y2="{:.1}" stroke="black"/><text x="{a:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            axis + 4.0,
            axis + 15.0,
            if step >= 1000.0 {
                format!("{:.0} s", t / 1000.0)
            } else {
                format!("{t:.0} ms")
            },
            a = x(t)
        );
        t += step;
    }
    let mut lx = LEFT;
    for st in [
        MemberState::Consuming,
        MemberState::Revoking,
        MemberState::Waiting,
        MemberState::Idle,
    ] {
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            axis + 20.0,
            colour(st),
            lx + 14.0,
            axis + 29.0,
            format!("{st:?}").to_lowercase()
        );
        lx += 90.0;
    }
    s.push_str("</svg>\n");
    s
}
