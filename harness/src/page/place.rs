//! Where text goes on a diagram of arrows: boxes of text, arrows as
//! segments, and the first of some candidate places that no arrow crosses
//! and no other text covers. Shared by the results page's message-flow
//! diagram and `explore`'s, whose labels used to sit on their own arrows
//! and under others.

/// An 11 px sans-serif character is at most about this wide, and a line
/// of text this high: the boxes the layout keeps arrows out of.
const CHAR_W: f64 = 6.5;
pub const TEXT_H: f64 = 14.0;
/// The half width of an arrow's head and stroke: a box this close to a
/// segment touches it.
const STROKE: f64 = 3.0;

/// A box of text, `x`/`y` its top left corner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextBox {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl TextBox {
    pub fn of(text: &str, x: f64, y: f64) -> TextBox {
        TextBox {
            x,
            y,
            w: text.chars().count() as f64 * CHAR_W + 4.0,
            h: TEXT_H,
        }
    }

    pub fn overlaps(&self, o: &TextBox) -> bool {
        self.x < o.x + o.w && o.x < self.x + self.w && self.y < o.y + o.h && o.y < self.y + self.h
    }

    /// Whether the segment passes within `STROKE` of the box.
    pub fn hit_by(&self, s: &Segment) -> bool {
        let b = TextBox {
            x: self.x - STROKE,
            y: self.y - STROKE,
            w: self.w + 2.0 * STROKE,
            h: self.h + 2.0 * STROKE,
        };
        let inside = |x: f64, y: f64| x >= b.x && x <= b.x + b.w && y >= b.y && y <= b.y + b.h;
        if inside(s.x1, s.y1) || inside(s.x2, s.y2) {
            return true;
        }
        let (l, r, t, bo) = (b.x, b.x + b.w, b.y, b.y + b.h);
        [(l, t, r, t), (r, t, r, bo), (r, bo, l, bo), (l, bo, l, t)]
            .iter()
            .any(|&(x1, y1, x2, y2)| crosses(s, &Segment { x1, y1, x2, y2 }))
    }
}

/// An arrow's line, from its tail to its head.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
}

/// Whether two segments intersect (touching counts).
pub fn crosses(a: &Segment, b: &Segment) -> bool {
    let orient = |px: f64, py: f64, qx: f64, qy: f64, rx: f64, ry: f64| {
        let v = (qx - px) * (ry - py) - (qy - py) * (rx - px);
        if v.abs() < 1e-9 {
            0
        } else if v > 0.0 {
            1
        } else {
            -1
        }
    };
    let on = |px: f64, py: f64, qx: f64, qy: f64, rx: f64, ry: f64| {
        rx >= px.min(qx) && rx <= px.max(qx) && ry >= py.min(qy) && ry <= py.max(qy)
    };
    let o1 = orient(a.x1, a.y1, a.x2, a.y2, b.x1, b.y1);
    let o2 = orient(a.x1, a.y1, a.x2, a.y2, b.x2, b.y2);
    let o3 = orient(b.x1, b.y1, b.x2, b.y2, a.x1, a.y1);
    let o4 = orient(b.x1, b.y1, b.x2, b.y2, a.x2, a.y2);
    (o1 != o2 && o3 != o4)
        || (o1 == 0 && on(a.x1, a.y1, a.x2, a.y2, b.x1, b.y1))
        || (o2 == 0 && on(a.x1, a.y1, a.x2, a.y2, b.x2, b.y2))
        || (o3 == 0 && on(b.x1, b.y1, b.x2, b.y2, a.x1, a.y1))
        || (o4 == 0 && on(b.x1, b.y1, b.x2, b.y2, a.x2, a.y2))
}

/// The first candidate that no segment crosses and no box in `taken`
/// overlaps.
pub fn first_free(
    candidates: &[TextBox],
    segments: &[Segment],
    taken: &[TextBox],
) -> Option<TextBox> {
    candidates
        .iter()
        .copied()
        .find(|b| !segments.iter().any(|s| b.hit_by(s)) && !taken.iter().any(|t| t.overlaps(b)))
}

/// Places for a label of `text` beside the line from `(x1, y1)` to
/// `(x2, y2)`: at points along it, middle first, on each side, clear of
/// the line itself.
pub fn beside(text: &str, x1: f64, y1: f64, x2: f64, y2: f64) -> Vec<TextBox> {
    let w = TextBox::of(text, 0.0, 0.0).w;
    let mut out = Vec::new();
    for t in [0.5, 0.35, 0.65, 0.2, 0.8] {
        let (px, py) = (x1 + (x2 - x1) * t, y1 + (y2 - y1) * t);
        for gap in [5.0, 12.0] {
            for (bx, by) in [
                (px - w / 2.0, py - TEXT_H - gap),
                (px - w / 2.0, py + gap),
                (px + gap, py - TEXT_H - gap),
                (px - w - gap, py - TEXT_H - gap),
                (px + gap, py + gap),
                (px - w - gap, py + gap),
            ] {
                out.push(TextBox::of(text, bx, by));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crossing_segments_are_found_and_parallel_ones_are_not() {
        let s = |x1, y1, x2, y2| Segment { x1, y1, x2, y2 };
        assert!(crosses(&s(0.0, 0.0, 10.0, 10.0), &s(0.0, 10.0, 10.0, 0.0)));
        assert!(!crosses(&s(0.0, 0.0, 10.0, 0.0), &s(0.0, 1.0, 10.0, 1.0)));
        assert!(crosses(&s(0.0, 0.0, 10.0, 0.0), &s(5.0, 0.0, 20.0, 0.0)));
        let b = TextBox {
            x: 10.0,
            y: 10.0,
            w: 20.0,
            h: 10.0,
        };
        // Straight through, ending inside, passing by within the stroke.
        assert!(b.hit_by(&s(0.0, 15.0, 40.0, 15.0)));
        assert!(b.hit_by(&s(0.0, 0.0, 15.0, 15.0)));
        assert!(b.hit_by(&s(0.0, 8.0, 40.0, 8.0)));
        assert!(!b.hit_by(&s(0.0, 0.0, 40.0, 0.0)));
        assert!(!b.hit_by(&s(0.0, 30.0, 9.0, 40.0)));
    }

    #[test]
    fn a_free_place_beside_a_diagonal_line_is_found() {
        let line = Segment {
            x1: 0.0,
            y1: 0.0,
            x2: 200.0,
            y2: 60.0,
        };
        let other = Segment {
            x1: 200.0,
            y1: 0.0,
            x2: 0.0,
            y2: 60.0,
        };
        let candidates = beside("write counter = 2", line.x1, line.y1, line.x2, line.y2);
        let b = first_free(&candidates, &[line, other], &[]).expect("a free place");
        assert!(!b.hit_by(&line) && !b.hit_by(&other));
        // Nowhere is free when every place is taken.
        assert_eq!(first_free(&candidates, &[line], &candidates), None);
    }
}
