//! The printed table: one row per figure, with its target and a mark.

use std::fmt::Write;

/// What a figure should be.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// At most this.
    AtMost(f64),
    /// At least this.
    AtLeast(f64),
    /// No target (context only).
    None,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Issue item number.
    pub item: &'static str,
    /// What is measured.
    pub what: String,
    /// Database backend (or "—").
    pub db: String,
    /// The figure, or why there is none.
    pub value: Result<f64, String>,
    /// Decimals to print.
    pub decimals: usize,
    /// Unit suffix (empty for ratios).
    pub unit: &'static str,
    /// Target.
    pub target: Target,
}

impl Row {
    /// A ratio row.
    pub fn ratio(item: &'static str, what: String, db: &str, value: f64, target: Target) -> Row {
        Row {
            item,
            what,
            db: db.to_string(),
            value: Ok(value),
            decimals: 2,
            unit: "",
            target,
        }
    }

    /// A row without a figure.
    pub fn not_measured(item: &'static str, what: String, db: &str, why: String) -> Row {
        Row {
            item,
            what,
            db: db.to_string(),
            value: Err(why),
            decimals: 0,
            unit: "",
            target: Target::None,
        }
    }

    fn mark(&self) -> &'static str {
        match (&self.value, self.target) {
            (Err(_), _) | (_, Target::None) => "",
            (Ok(v), Target::AtMost(t)) if *v <= t => "ok",
            (Ok(v), Target::AtLeast(t)) if *v >= t => "ok",
            _ => "MISS",
        }
    }

    /// True when a target was missed.
    pub fn missed(&self) -> bool {
        self.mark() == "MISS"
    }
}

fn num(v: f64, decimals: usize) -> String {
    format!("{v:.decimals$}")
}

/// Renders the rows as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| # | measure | db | value | target | |");
    let _ = writeln!(out, "|---|---|---|---:|---|---|");
    for r in rows {
        let value = match &r.value {
            Ok(v) => format!("{}{}", num(*v, r.decimals), r.unit),
            Err(why) => why.clone(),
        };
        let target = match r.target {
            Target::AtMost(t) => format!("≤ {}{}", num(t, r.decimals.min(2)), r.unit),
            Target::AtLeast(t) => format!("≥ {}{}", num(t, r.decimals.min(2)), r.unit),
            Target::None => "—".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.item,
            r.what,
            r.db,
            value,
            target,
            r.mark()
        );
    }
    out
}
