//! The report's charts, drawn by plotters as SVG. Each charted number is also drawn as a bold
//! label beside its mark, so that a reader (and the browser test) reads the values off the chart.

use plotters::coord::Shift;
use plotters::prelude::*;

/// A chart that could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("the {chart} chart could not be drawn: {message}")]
pub struct ChartError {
    /// Which chart.
    pub chart: String,
    /// What plotters said.
    pub message: String,
}

const LINE: RGBColor = RGBColor(31, 119, 180);
const PROJECTED: RGBColor = RGBColor(230, 120, 20);
const FONT: &str = "sans-serif";

fn value_font() -> TextStyle<'static> {
    (FONT, 16).into_font().style(FontStyle::Bold).color(&BLACK)
}

/// Draws into an SVG string of `size` with `draw`, naming the chart in an error.
type Drawn = Result<(), Box<dyn std::error::Error>>;

fn svg(
    chart: &str,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Drawn,
) -> Result<String, ChartError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(|e| Box::new(e) as Box<dyn std::error::Error>)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(|e| Box::new(e) as Box<dyn std::error::Error>));
        drawn.map_err(|e| ChartError {
            chart: chart.to_owned(),
            message: e.to_string(),
        })?;
    }
    Ok(out)
}

/// The top of a value axis: a little above the largest value, never 0.
fn top(values: impl Iterator<Item = f64>, floor: f64) -> f64 {
    values.fold(floor, f64::max) * 1.18
}

/// One value per iteration, as a line with labelled points (`World 0`, `World 1`, …).
pub fn per_iteration(chart: &str, unit: &str, points: &[(u32, f64)]) -> Result<String, ChartError> {
    svg(chart, (460, 260), |root| {
        let n = points.iter().map(|(i, _)| *i).max().map_or(1, |m| m + 1);
        let mut c = ChartBuilder::on(root)
            .caption(chart, (FONT, 20))
            .margin(14)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(
                -0.5f64..(f64::from(n) - 0.5),
                0f64..top(points.iter().map(|p| p.1), 1.0),
            )?;
        let whole = |x: &f64| {
            if (x - x.round()).abs() < 1e-9 && *x >= 0.0 {
                format!("World {}", x.round())
            } else {
                String::new()
            }
        };
        c.configure_mesh()
            .label_style((FONT, 14))
            .disable_x_mesh()
            .x_labels(n as usize + 1)
            .x_label_formatter(&whole)
            .y_desc(unit)
            .draw()?;
        let at = |(i, v): &(u32, f64)| (f64::from(*i), *v);
        c.draw_series(LineSeries::new(points.iter().map(at), LINE.stroke_width(2)))?;
        c.draw_series(points.iter().map(|p| {
            EmptyElement::at(at(p))
                + Circle::new((0, 0), 4, LINE.filled())
                + Text::new(format!("{:.2}", p.1), (6, -18), value_font())
        }))?;
        Ok(())
    })
}

/// The x of the `k`th bar (a handful of bars: exact in `f64`).
fn position(k: usize) -> f64 {
    f64::from(u32::try_from(k).unwrap_or(u32::MAX))
}

/// One bar per category, labelled with its value (`{:.2}`, or whole for counts).
pub fn bars(chart: &str, unit: &str, bars: &[(String, f64)], whole: bool) -> Result<String, ChartError> {
    svg(chart, (460, 260), |root| {
        let n = u32::try_from(bars.len().max(1)).unwrap_or(u32::MAX);
        let mut c = ChartBuilder::on(root)
            .caption(chart, (FONT, 20))
            .margin(14)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5f64..(f64::from(n) - 0.5), 0f64..top(bars.iter().map(|b| b.1), 1.0))?;
        let label = |x: &f64| {
            let k = x.round();
            let at = (0..bars.len()).find(|i| (position(*i) - k).abs() < 1e-9 && (x - k).abs() < 1e-9);
            at.map(|i| bars[i].0.clone()).unwrap_or_default()
        };
        c.configure_mesh()
            .label_style((FONT, 14))
            .disable_x_mesh()
            .x_labels(n as usize + 1)
            .x_label_formatter(&label)
            .y_desc(unit)
            .draw()?;
        c.draw_series(bars.iter().enumerate().map(|(k, (_, v))| {
            let x = position(k);
            Rectangle::new([(x - 0.32, 0.0), (x + 0.32, *v)], LINE.mix(0.8).filled())
        }))?;
        c.draw_series(bars.iter().enumerate().map(|(k, (_, v))| {
            let text = if whole { format!("{v:.0}") } else { format!("{v:.2}") };
            EmptyElement::at((position(k), *v)) + Text::new(text, (-14, -18), value_font())
        }))?;
        Ok(())
    })
}

/// An instance's CPU over the lookback (hours before its last datapoint) and the same load
/// projected onto the chosen type.
pub fn cpu(
    chart: &str,
    hours: &[f64],
    observed: &[f64],
    projected: &[f64],
    target: &str,
) -> Result<String, ChartError> {
    svg(chart, (560, 240), |root| {
        let start = hours.first().copied().unwrap_or(-1.0).min(-1.0);
        let high = top(observed.iter().chain(projected).copied(), 10.0).min(118.0);
        let mut c = ChartBuilder::on(root)
            .caption(chart, (FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(44)
            .build_cartesian_2d(start..0f64, 0f64..high)?;
        c.configure_mesh()
            .label_style((FONT, 14))
            .x_desc("hours")
            .y_desc("CPU %")
            .draw()?;
        let points = |values: &[f64]| hours.iter().copied().zip(values.iter().copied()).collect::<Vec<_>>();
        c.draw_series(LineSeries::new(points(observed), LINE.stroke_width(1)))?
            .label("observed")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], LINE));
        c.draw_series(LineSeries::new(points(projected), PROJECTED.stroke_width(1)))?
            .label(format!("projected on {target}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], PROJECTED));
        c.configure_series_labels()
            .border_style(BLACK.mix(0.3))
            .background_style(WHITE.mix(0.9))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts of the bold labels, in order.
    fn values(svg: &str) -> Vec<&str> {
        svg.split("font-weight=\"bold\">")
            .skip(1)
            .filter_map(|rest| rest.split("</text>").next())
            .map(str::trim)
            .collect()
    }

    #[test]
    fn charts_are_svg_with_their_values_as_bold_labels() {
        let svg = per_iteration("Monthly cost", "USD", &[(0, 1234.5), (1, 987.25)]).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert_eq!(values(&svg), ["1234.50", "987.25"]);
        assert!(svg.contains("World 0") && svg.contains("World 1"));
        let svg = bars("Findings", "count", &[("high".into(), 3.0), ("low".into(), 0.0)], true).unwrap();
        assert_eq!(values(&svg), ["3", "0"]);
        assert!(svg.contains("high") && svg.contains("low"));
        let svg = cpu(
            "i-1",
            &[-2.0, -1.0, 0.0],
            &[10.0, 20.0, 30.0],
            &[20.0, 40.0, 60.0],
            "m5.large",
        )
        .unwrap();
        assert!(svg.contains("projected on m5.large"));
        assert!(
            svg.contains("#1F77B4") && svg.contains("#E67814"),
            "both series are drawn"
        );
    }
}
