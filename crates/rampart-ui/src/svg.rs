//! Numbers for the SVG charts the templates draw. Only numbers leave this module, so a chart
//! can never carry markup from the data it shows.

/// A score trend: one point per day (or run), oldest first, scores 0–100.
#[derive(Debug, Clone, Default)]
pub struct Trend {
    /// `(label, score)`; the label is for the table beside the chart.
    pub points: Vec<(String, f64)>,
}

/// The chart's drawing box, in SVG user units.
pub const TREND_WIDTH: f64 = 300.0;
/// The chart's height.
pub const TREND_HEIGHT: f64 = 60.0;

impl Trend {
    /// The `points` attribute of the trend's polyline: x spread evenly over the width, y from
    /// the score (100 at the top). A single point is drawn as a flat line.
    pub fn polyline(&self) -> String {
        let n = self.points.len();
        let y = |score: f64| TREND_HEIGHT - score.clamp(0.0, 100.0) / 100.0 * TREND_HEIGHT;
        match n {
            0 => String::new(),
            1 => {
                let y = y(self.points[0].1);
                format!("0.0,{y:.1} {TREND_WIDTH:.1},{y:.1}")
            }
            _ => self
                .points
                .iter()
                .enumerate()
                .map(|(i, (_, score))| {
                    let x = i as f64 / (n - 1) as f64 * TREND_WIDTH;
                    format!("{x:.1},{:.1}", y(*score))
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// The newest score, if any.
    pub fn last(&self) -> Option<f64> {
        self.points.last().map(|p| p.1)
    }

    /// The change from the first to the newest point, in points of score.
    pub fn change(&self) -> Option<f64> {
        Some(self.points.last()?.1 - self.points.first()?.1)
    }
}

/// Widths (in percent of the bar) of the parts of a stacked pass / fail / other bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stack {
    /// Passed part.
    pub pass: f64,
    /// Failed part, right after it.
    pub fail: f64,
    /// The rest (not applicable, errors, not run).
    pub other: f64,
}

impl Stack {
    /// The parts of `total` counts; all zero for an empty total.
    pub fn of(passed: u64, failed: u64, other: u64) -> Stack {
        let total = (passed + failed + other) as f64;
        if total == 0.0 {
            return Stack {
                pass: 0.0,
                fail: 0.0,
                other: 0.0,
            };
        }
        Stack {
            pass: passed as f64 / total * 100.0,
            fail: failed as f64 / total * 100.0,
            other: other as f64 / total * 100.0,
        }
    }

    /// Where the failed part starts.
    pub fn fail_x(&self) -> f64 {
        self.pass
    }

    /// Where the other part starts.
    pub fn other_x(&self) -> f64 {
        self.pass + self.fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polyline_spreads_points_and_puts_100_at_the_top() {
        let t = Trend {
            points: vec![("a".into(), 100.0), ("b".into(), 50.0), ("c".into(), 0.0)],
        };
        assert_eq!(t.polyline(), "0.0,0.0 150.0,30.0 300.0,60.0");
        assert_eq!(t.change(), Some(-100.0));
    }

    #[test]
    fn one_point_is_a_flat_line_and_scores_are_clamped() {
        let t = Trend {
            points: vec![("a".into(), 150.0)],
        };
        assert_eq!(t.polyline(), "0.0,0.0 300.0,0.0");
        assert_eq!(Trend::default().polyline(), "");
    }

    #[test]
    fn stack_parts_add_up() {
        let s = Stack::of(1, 2, 1);
        assert_eq!((s.pass, s.fail, s.other), (25.0, 50.0, 25.0));
        assert_eq!((s.fail_x(), s.other_x()), (25.0, 75.0));
        assert_eq!(Stack::of(0, 0, 0).pass, 0.0);
    }
}
