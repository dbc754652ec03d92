//! Inward orders: stock coming in (purchase orders, stock transfers, B2B returns), received
//! by GRN and sorted by QC. The line arithmetic of DESIGN.md §4 item 5 lives here.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::code::Code;
use crate::validation::{FieldError, Problems};

/// An order or inward line's quantity is 1 to 1,000,000 (API.md).
pub const LINE_QTY_MAX: i64 = 1_000_000;
/// Lines on one inward order.
pub const INWARD_LINES_MAX: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InwardKind {
    /// Purchase order from a supplier.
    Po,
    /// Stock transfer from another warehouse.
    St,
    /// Goods returned by a B2B customer.
    B2bReturn,
}

impl InwardKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InwardKind::Po => "PO",
            InwardKind::St => "ST",
            InwardKind::B2bReturn => "B2B_RETURN",
        }
    }

    pub fn parse(text: &str) -> Result<InwardKind, String> {
        match text {
            "PO" => Ok(InwardKind::Po),
            "ST" => Ok(InwardKind::St),
            "B2B_RETURN" => Ok(InwardKind::B2bReturn),
            other => Err(format!("must be PO, ST or B2B_RETURN, got {other:?}")),
        }
    }

    /// What the `party` of an order of this kind names.
    pub fn party(self) -> PartyKind {
        match self {
            InwardKind::Po => PartyKind::Supplier,
            InwardKind::St => PartyKind::Warehouse,
            InwardKind::B2bReturn => PartyKind::Customer,
        }
    }
}

/// Where goods of an inward order come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartyKind {
    Supplier,
    Warehouse,
    Customer,
}

/// A line quantity: a whole number from 1 to [`LINE_QTY_MAX`].
pub fn line_qty(text: Option<&str>) -> Result<i64, String> {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("is required")?;
    let qty: i64 = text
        .parse()
        .map_err(|_| format!("must be a whole number, got {text:?}"))?;
    if !(1..=LINE_QTY_MAX).contains(&qty) {
        return Err(format!("must be between 1 and {LINE_QTY_MAX}"));
    }
    Ok(qty)
}

/// A quantity that may be zero (QC's fail or lost), 0 to [`LINE_QTY_MAX`].
pub fn optional_qty(text: Option<&str>) -> Result<i64, String> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(0),
        Some(text) => {
            let qty: i64 = text
                .parse()
                .map_err(|_| format!("must be a whole number, got {text:?}"))?;
            if !(0..=LINE_QTY_MAX).contains(&qty) {
                return Err(format!("must be between 0 and {LINE_QTY_MAX}"));
            }
            Ok(qty)
        }
    }
}

/// One inward line's counts. Invariant: `qc_pass + qc_fail + lost ≤ received`, and
/// `received ≤ ordered` unless the client allows excess GRN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InwardLine {
    pub ordered: i64,
    pub received: i64,
    pub qc_pass: i64,
    pub qc_fail: i64,
    pub lost: i64,
}

/// Why a GRN or QC was refused for a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InwardError {
    #[error("receiving {qty} would make {received} of {ordered} ordered; excess GRN is off")]
    OverReceipt {
        qty: i64,
        received: i64,
        ordered: i64,
    },
    #[error("QC of {qty} exceeds the {pending} received units awaiting QC")]
    OverQc { qty: i64, pending: i64 },
    #[error("QC must pass, fail or lose at least one unit")]
    EmptyQc,
}

impl InwardLine {
    pub fn new(ordered: i64) -> InwardLine {
        InwardLine {
            ordered,
            ..InwardLine::default()
        }
    }

    /// Received units not yet through QC.
    pub fn awaiting_qc(&self) -> i64 {
        self.received - self.qc_pass - self.qc_fail - self.lost
    }

    /// Books a GRN of `qty` units (qty ≥ 1, checked by the caller's parse).
    pub fn receive(&mut self, qty: i64, excess_allowed: bool) -> Result<(), InwardError> {
        let received = self.received + qty;
        if received > self.ordered && !excess_allowed {
            return Err(InwardError::OverReceipt {
                qty,
                received,
                ordered: self.ordered,
            });
        }
        self.received = received;
        Ok(())
    }

    /// Books a QC result of pass / fail / lost units out of those awaiting QC.
    pub fn quality_check(&mut self, pass: i64, fail: i64, lost: i64) -> Result<(), InwardError> {
        let qty = pass + fail + lost;
        if qty == 0 {
            return Err(InwardError::EmptyQc);
        }
        let pending = self.awaiting_qc();
        if qty > pending {
            return Err(InwardError::OverQc { qty, pending });
        }
        self.qc_pass += pass;
        self.qc_fail += fail;
        self.lost += lost;
        Ok(())
    }

    /// Every breach of DESIGN.md §4 item 5 on this line.
    pub fn breaches(&self, excess_allowed: bool) -> Vec<String> {
        let mut breaches = Vec::new();
        for (name, value) in [
            ("ordered", self.ordered),
            ("received", self.received),
            ("qc_pass", self.qc_pass),
            ("qc_fail", self.qc_fail),
            ("lost", self.lost),
        ] {
            if value < 0 {
                breaches.push(format!("{name} is {value}, below zero"));
            }
        }
        if self.received > self.ordered && !excess_allowed {
            breaches.push(format!(
                "received {} exceeds ordered {} and excess GRN is off",
                self.received, self.ordered
            ));
        }
        if self.awaiting_qc() < 0 {
            breaches.push(format!(
                "qc_pass {} + qc_fail {} + lost {} exceed received {}",
                self.qc_pass, self.qc_fail, self.lost, self.received
            ));
        }
        breaches
    }
}

/// A draft line of a new inward order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InwardLineDraft {
    pub sku: Option<String>,
    pub qty: Option<String>,
}

/// A validated new inward order, its SKUs and party still to be resolved by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInwardOrder {
    pub kind: InwardKind,
    pub warehouse: Code,
    pub party: Option<Code>,
    pub lines: Vec<(Code, i64)>,
}

/// Checks a new inward order: kind, warehouse, optional party, 1 to
/// [`INWARD_LINES_MAX`] lines of distinct SKUs with quantities in range.
pub fn validate_new_inward_order(
    kind: Option<&str>,
    warehouse: Option<&str>,
    party: Option<&str>,
    lines: &[InwardLineDraft],
) -> Result<NewInwardOrder, Vec<FieldError>> {
    let mut problems = Problems::new();
    let kind = problems.take(
        "type",
        kind.map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| "is required".to_owned())
            .and_then(InwardKind::parse),
    );
    let warehouse = problems.take("warehouse", Code::required(warehouse));
    let party = match party.map(str::trim).filter(|p| !p.is_empty()) {
        None => None,
        Some(text) => problems.take("party", Code::parse(text)),
    };
    if lines.is_empty() {
        problems.add("lines", "an inward order needs at least one line");
    }
    if lines.len() > INWARD_LINES_MAX {
        problems.add("lines", format!("at most {INWARD_LINES_MAX} lines"));
    }
    let mut seen = BTreeSet::new();
    let mut valid_lines = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let sku = problems.take(
            &format!("lines[{index}].sku"),
            Code::required(line.sku.as_deref()),
        );
        let qty = problems.take(
            &format!("lines[{index}].qty"),
            line_qty(line.qty.as_deref()),
        );
        if let Some(sku) = &sku
            && !seen.insert(sku.clone())
        {
            problems.add(
                format!("lines[{index}].sku"),
                format!("{sku} appears on another line of this order"),
            );
        }
        if let (Some(sku), Some(qty)) = (sku, qty) {
            valid_lines.push((sku, qty));
        }
    }
    match (kind, warehouse) {
        (Some(kind), Some(warehouse)) if problems.is_empty() => Ok(NewInwardOrder {
            kind,
            warehouse,
            party,
            lines: valid_lines,
        }),
        _ => Err(problems.into_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiving_up_to_ordered_is_allowed_beyond_only_with_excess_grn() {
        let mut line = InwardLine::new(10);
        assert_eq!(line.receive(6, false), Ok(()));
        assert_eq!(line.receive(4, false), Ok(()));
        assert_eq!(
            line.receive(1, false),
            Err(InwardError::OverReceipt {
                qty: 1,
                received: 11,
                ordered: 10
            })
        );
        assert_eq!(line.received, 10, "a refused GRN changes nothing");
        assert_eq!(line.receive(1, true), Ok(()));
        assert_eq!(line.received, 11);
        assert!(line.breaches(true).is_empty());
        assert_eq!(line.breaches(false).len(), 1);
    }

    #[test]
    fn qc_never_exceeds_what_awaits_it() {
        let mut line = InwardLine::new(10);
        line.receive(8, false).unwrap();
        assert_eq!(line.quality_check(5, 2, 0), Ok(()));
        assert_eq!(line.awaiting_qc(), 1);
        assert_eq!(
            line.quality_check(1, 1, 0),
            Err(InwardError::OverQc { qty: 2, pending: 1 })
        );
        assert_eq!(line.quality_check(0, 0, 0), Err(InwardError::EmptyQc));
        assert_eq!(line.quality_check(0, 0, 1), Ok(()));
        assert_eq!(
            (line.qc_pass, line.qc_fail, line.lost, line.awaiting_qc()),
            (5, 2, 1, 0)
        );
        assert!(line.breaches(false).is_empty());
    }

    #[test]
    fn line_quantities_are_one_to_a_million() {
        assert_eq!(line_qty(Some("1")), Ok(1));
        assert_eq!(line_qty(Some("1000000")), Ok(1_000_000));
        for bad in ["0", "-1", "1000001", "1.5", "x", ""] {
            assert!(line_qty(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(optional_qty(None), Ok(0));
        assert!(optional_qty(Some("-1")).is_err());
    }

    #[test]
    fn a_new_order_reports_every_problem() {
        let lines = [
            InwardLineDraft {
                sku: Some("TEE".into()),
                qty: Some("5".into()),
            },
            InwardLineDraft {
                sku: Some("TEE".into()),
                qty: Some("0".into()),
            },
            InwardLineDraft {
                sku: None,
                qty: Some("2".into()),
            },
        ];
        let errors =
            validate_new_inward_order(Some("GIFT"), Some("BLR1"), Some("a b"), &lines).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "type",
                "party",
                "lines[1].qty",
                "lines[1].sku",
                "lines[2].sku"
            ]
        );
        let order = validate_new_inward_order(Some("PO"), Some("BLR1"), None, &lines[..1]).unwrap();
        assert_eq!(order.lines.len(), 1);
        assert_eq!(order.kind.party(), PartyKind::Supplier);
    }
}
