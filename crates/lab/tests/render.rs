//! The timeline SVG and the HTML report render for a recorded run (a real
//! crash run: three librdkafka members, one killed, consumer protocol).

use cohort_lab::run::RunResult;

fn recorded() -> RunResult {
    serde_json::from_str(include_str!("fixtures/crash-consumer.json")).expect("fixture parses")
}

#[test]
fn timeline_svg_draws_every_member_and_the_gaps() {
    let r = recorded();
    let svg = cohort_lab::svg::render(&r);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for m in &r.timeline.members {
        assert!(svg.contains(&format!(">{}<", m.name)), "row for {}", m.name);
    }
    // One rectangle per member segment, one per drawn gap, plus the legend.
    let segments: usize = r.timeline.members.iter().map(|m| m.segments.len()).sum();
    assert_eq!(
        svg.matches("<rect").count(),
        segments + r.timeline.gaps.len() + 4
    );
    // The killed member's partitions were silent for its session timeout.
    assert!(r.timeline.gaps.iter().any(|(_, a, b)| b - a > 5000.0));
    assert!(svg.contains(">t0<"));
}

#[test]
fn report_lays_out_the_table_and_timelines() {
    let r = recorded();
    let html = cohort_lab::report::html(std::slice::from_ref(&r));
    assert!(html.contains("<table>") && html.contains("crash") && html.contains("<svg"));
    let md = cohort_lab::report::markdown(&[r]);
    assert_eq!(md.lines().count(), 3);
    assert!(md
        .lines()
        .nth(2)
        .unwrap()
        .starts_with("| crash | cohort | consumer (uniform) | 3/6 |"));
}
