//! Bar charts drawn as SVG on the server: one group of bars per day, one bar per series,
//! a y axis with round gridlines, day labels thinned to fit. Labels are XML-escaped.

use std::fmt::Write;

use super::flow_graph::esc;

/// One series of a chart: a CSS class picks its colour.
pub(crate) struct Series {
    pub name: String,
    pub class: &'static str,
    pub values: Vec<i64>,
}

const HEIGHT: i64 = 220;
const LEFT: i64 = 64;
const BOTTOM: i64 = 28;
const TOP: i64 = 12;
const RIGHT: i64 = 12;

/// A step that gives about four gridlines with round values (1, 2, 5 × 10ⁿ).
fn nice_step(max: i64) -> i64 {
    let raw = (max.max(1) as f64 / 4.0).max(1.0);
    let magnitude = 10f64.powi(raw.log10().floor() as i32);
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(raw);
    step.max(1.0) as i64
}

/// The chart; `format` writes the y axis values (counts, money).
pub(crate) fn bars(title: &str, days: &[String], series: &[Series], format: &dyn Fn(i64) -> String) -> String {
    let n = days.len().max(1) as i64;
    let group = (1040 / n).clamp(8, 64);
    let width = LEFT + n * group + RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max = series.iter().flat_map(|s| s.values.iter().copied()).max().unwrap_or(0).max(1);
    let step = nice_step(max);
    let top_value = (max + step - 1) / step * step;
    let y = |v: i64| TOP + plot_h - plot_h * v / top_value;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {HEIGHT}" role="img" aria-label="{}">"#,
        esc(title)
    );
    let mut v = 0;
    while v <= top_value {
        let gy = y(v);
        let _ = write!(
            s,
            r#"<line class="grid" x1="{LEFT}" y1="{gy}" x2="{}" y2="{gy}"/><text class="axis" x="{}" y="{}" text-anchor="end">{}</text>"#,
            width - RIGHT,
            LEFT - 6,
            gy + 4,
            esc(&format(v))
        );
        v += step;
    }
    let k = series.len().max(1) as i64;
    let bar = ((group - 4) / k).max(2);
    let every = (n / 8).max(1);
    for (d, day) in days.iter().enumerate() {
        let gx = LEFT + d as i64 * group + 2;
        for (i, serie) in series.iter().enumerate() {
            let value = serie.values.get(d).copied().unwrap_or(0);
            let top = y(value);
            let _ = write!(
                s,
                r#"<rect class="bar {}" x="{}" y="{top}" width="{bar}" height="{}"><title>{} · {}: {}</title></rect>"#,
                serie.class,
                gx + i as i64 * bar,
                (TOP + plot_h - top).max(0),
                esc(day),
                esc(&serie.name),
                esc(&format(value))
            );
        }
        if d as i64 % every == 0 {
            let label = day.get(5..).unwrap_or(day);
            let _ = write!(
                s,
                r#"<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>"#,
                gx + group / 2 - 2,
                HEIGHT - 8,
                esc(label)
            );
        }
    }
    let _ = write!(
        s,
        r#"<line class="baseline" x1="{LEFT}" y1="{}" x2="{}" y2="{}"/>"#,
        TOP + plot_h,
        width - RIGHT,
        TOP + plot_h
    );
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gridlines_are_round_and_bars_scale_to_the_top() {
        assert_eq!(nice_step(7), 2);
        assert_eq!(nice_step(40), 10);
        assert_eq!(nice_step(0), 1);
        let svg = bars(
            "t",
            &["2026-01-01".into(), "2026-01-02".into()],
            &[Series { name: "<leads>".into(), class: "a", values: vec![4, 8] }],
            &|v| v.to_string(),
        );
        assert!(svg.contains("&lt;leads&gt;: 8"));
        assert!(!svg.contains("<leads>"));
        assert_eq!(svg.matches("<rect class=\"bar").count(), 2);
    }
}
