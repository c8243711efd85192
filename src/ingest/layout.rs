//! Reading order of the text lines OCR found on a page.
//!
//! A discharge record is mostly one column, with tables read by row, so rows go top to bottom
//! and boxes left to right within a row. Some HIS layouts print two columns (the 首页's
//! diagnosis blocks, or two notes side by side): reading those by row would interleave two
//! texts line by line and break every section. Where a run of rows leaves a gutter clear and
//! both sides are filled with text lines, the left column is read before the right. A table
//! also leaves gaps between its columns, but its cells are short beside them; only runs whose
//! lines fill their column on both sides are taken for columns, so tables keep their rows.

/// A region of the page, in pixels (end exclusive).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Rect {
    pub x0: usize,
    pub y0: usize,
    pub x1: usize,
    pub y1: usize,
}

impl Rect {
    /// On one row: they overlap vertically by at least half the smaller height.
    pub fn same_row(&self, row: &Rect) -> bool {
        let overlap = self.y1.min(row.y1).saturating_sub(self.y0.max(row.y0));
        overlap * 2 >= (self.y1 - self.y0).min(row.y1 - row.y0)
    }

    fn covers(&self, x: usize) -> bool {
        self.x0 <= x && x < self.x1
    }
}

/// Fewest rows a column block has: two lines side by side are as likely a table row.
const MIN_COLUMN_ROWS: usize = 3;
/// How much of its column a text line fills (the median over the block's lines, each side):
/// prose lines run to the gutter, table cells stop well short of it.
const MIN_COLUMN_FILL: f32 = 0.6;

/// The boxes in reading order (see the module's comment). `width` is the page's.
pub(super) fn reading_order(boxes: Vec<Rect>, width: usize) -> Vec<Rect> {
    let rows = rows(boxes);
    let Some(gutter) = gutter(&rows, width) else {
        return rows.into_iter().flatten().collect();
    };
    let mut out = Vec::new();
    let mut run: Vec<Vec<Rect>> = Vec::new();
    for row in rows {
        if row.iter().any(|b| b.covers(gutter)) {
            flush(&mut run, gutter, &mut out);
            out.extend(row);
        } else {
            run.push(row);
        }
    }
    flush(&mut run, gutter, &mut out);
    out
}

/// Rows top to bottom, each left to right.
fn rows(mut boxes: Vec<Rect>) -> Vec<Vec<Rect>> {
    boxes.sort_by_key(|b| (b.y0, b.x0));
    let mut rows: Vec<Vec<Rect>> = Vec::new();
    for b in boxes {
        match rows.last_mut() {
            Some(row) if b.same_row(&row[0]) => row.push(b),
            _ => rows.push(vec![b]),
        }
    }
    for r in &mut rows {
        r.sort_by_key(|b| b.x0);
    }
    rows
}

/// The x in the middle of the page (its central 40 %) crossed by the fewest rows, the centre
/// of the widest such stretch; none when every x there is crossed by most rows.
fn gutter(rows: &[Vec<Rect>], width: usize) -> Option<usize> {
    if rows.len() < MIN_COLUMN_ROWS {
        return None;
    }
    let (lo, hi) = (width * 3 / 10, width * 7 / 10);
    let crossing = |x: usize| rows.iter().filter(|r| r.iter().any(|b| b.covers(x))).count();
    let counts: Vec<usize> = (lo..hi).map(crossing).collect();
    let fewest = *counts.iter().min()?;
    if fewest * 2 > rows.len() {
        return None;
    }
    let (mut best, mut best_len, mut start) = (None, 0, None);
    for (i, &c) in counts.iter().chain(std::iter::once(&usize::MAX)).enumerate() {
        match (c == fewest, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s > best_len {
                    best_len = i - s;
                    best = Some(lo + (s + i) / 2);
                }
                start = None;
            }
            _ => {}
        }
    }
    best
}

/// Appends a run of rows that do not cross the gutter: the left column then the right where
/// the run is a two-column block, else row by row.
fn flush(run: &mut Vec<Vec<Rect>>, gutter: usize, out: &mut Vec<Rect>) {
    let rows = std::mem::take(run);
    let sides: Vec<(Vec<Rect>, Vec<Rect>)> = rows
        .iter()
        .map(|r| r.iter().cloned().partition(|b| b.x1 <= gutter))
        .collect();
    if is_column_block(&sides, gutter) {
        let (left, right): (Vec<_>, Vec<_>) = sides.into_iter().unzip();
        out.extend(left.into_iter().flatten());
        out.extend(right.into_iter().flatten());
    } else {
        out.extend(rows.into_iter().flatten());
    }
}

fn is_column_block(sides: &[(Vec<Rect>, Vec<Rect>)], gutter: usize) -> bool {
    if sides.len() < MIN_COLUMN_ROWS {
        return false;
    }
    let left: Vec<&Vec<Rect>> = sides.iter().map(|s| &s.0).filter(|s| !s.is_empty()).collect();
    let right: Vec<&Vec<Rect>> = sides.iter().map(|s| &s.1).filter(|s| !s.is_empty()).collect();
    if left.len() < MIN_COLUMN_ROWS - 1 || right.len() < MIN_COLUMN_ROWS - 1 {
        return false;
    }
    let left_edge = left.iter().map(|r| r[0].x0).min().unwrap_or(0);
    let right_edge = right.iter().filter_map(|r| r.last()).map(|b| b.x1).max().unwrap_or(gutter);
    let fill = |lines: &[&Vec<Rect>], from: usize, to: usize| {
        let span = to.saturating_sub(from).max(1) as f32;
        let mut fills: Vec<f32> = lines
            .iter()
            .map(|r| (r.last().map_or(0, |b| b.x1) - r[0].x0) as f32 / span)
            .collect();
        fills.sort_by(f32::total_cmp);
        fills[fills.len() / 2]
    };
    fill(&left, left_edge, gutter) >= MIN_COLUMN_FILL
        && fill(&right, gutter, right_edge) >= MIN_COLUMN_FILL
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(x0: usize, x1: usize, row: usize) -> Rect {
        Rect { x0, y0: row * 30 + 5, x1, y1: row * 30 + 25 }
    }

    fn starts(boxes: &[Rect]) -> Vec<(usize, usize)> {
        boxes.iter().map(|b| (b.x0, b.y0 / 30)).collect()
    }

    #[test]
    fn a_single_column_and_its_rows_read_left_to_right() {
        let boxes = vec![line(500, 700, 0), line(20, 400, 0), line(20, 900, 1), line(20, 300, 2)];
        assert_eq!(starts(&reading_order(boxes, 1000)), [(20, 0), (500, 0), (20, 1), (20, 2)]);
    }

    #[test]
    fn two_columns_are_read_left_column_first_between_full_width_lines() {
        let mut boxes = vec![line(20, 980, 0)];
        for row in 1..=4 {
            boxes.push(line(20, 470, row));
            boxes.push(line(530, 975, row));
        }
        boxes.push(line(20, 200, 5));
        boxes.push(line(530, 990, 5)); // a short last line of the left paragraph
        boxes.push(line(20, 960, 6));
        let order = starts(&reading_order(boxes, 1000));
        assert_eq!(
            order,
            [(20, 0), (20, 1), (20, 2), (20, 3), (20, 4), (20, 5), (530, 1), (530, 2), (530, 3), (530, 4), (530, 5), (20, 6)],
            "the title, the left column, the right column, the full-width footer"
        );
    }

    #[test]
    fn a_table_keeps_its_rows() {
        let mut boxes = Vec::new();
        for row in 0..5 {
            boxes.push(line(20, 180, row)); // 药名
            boxes.push(line(550, 640, row)); // 剂量
            boxes.push(line(800, 900, row)); // 用法
        }
        let order = starts(&reading_order(boxes, 1000));
        let rows: Vec<usize> = order.iter().map(|s| s.1).collect();
        assert_eq!(rows, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
    }
}
