//! Shipments: the unit released to the WMS. Their status only moves forward, and the WMS
//! may send the same status twice.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShipmentStatus {
    Released,
    Picked,
    Packed,
    Shipped,
    Delivered,
    /// Returned to origin by the carrier after shipping.
    Rto,
    Cancelled,
}

impl ShipmentStatus {
    pub const ALL: [ShipmentStatus; 7] = [
        ShipmentStatus::Released,
        ShipmentStatus::Picked,
        ShipmentStatus::Packed,
        ShipmentStatus::Shipped,
        ShipmentStatus::Delivered,
        ShipmentStatus::Rto,
        ShipmentStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ShipmentStatus::Released => "RELEASED",
            ShipmentStatus::Picked => "PICKED",
            ShipmentStatus::Packed => "PACKED",
            ShipmentStatus::Shipped => "SHIPPED",
            ShipmentStatus::Delivered => "DELIVERED",
            ShipmentStatus::Rto => "RTO",
            ShipmentStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(text: &str) -> Option<ShipmentStatus> {
        ShipmentStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Units of a live shipment are still allocated (not shipped, not cancelled).
    pub fn is_live(self) -> bool {
        matches!(
            self,
            ShipmentStatus::Released | ShipmentStatus::Picked | ShipmentStatus::Packed
        )
    }

    /// Whether a seller may still cancel its units: only before the WMS picked them.
    pub fn is_cancellable(self) -> bool {
        self == ShipmentStatus::Released
    }

    /// The status a WMS update must come from to reach `self`.
    fn required_before(self) -> Option<ShipmentStatus> {
        match self {
            ShipmentStatus::Released | ShipmentStatus::Cancelled => None,
            ShipmentStatus::Picked => Some(ShipmentStatus::Released),
            ShipmentStatus::Packed => Some(ShipmentStatus::Picked),
            ShipmentStatus::Shipped => Some(ShipmentStatus::Packed),
            ShipmentStatus::Delivered | ShipmentStatus::Rto => Some(ShipmentStatus::Shipped),
        }
    }
}

/// What a status update from the WMS does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Move to the new status.
    Advance,
    /// The shipment is already there: a repeat, which changes nothing.
    Repeat,
}

/// Checks a WMS status update: forward one step at a time (RELEASED → PICKED → PACKED →
/// SHIPPED → DELIVERED, or SHIPPED → RTO); a repeat is a no-op; anything else — backwards,
/// skipping a step, leaving a final status, or asking for RELEASED or CANCELLED, which only
/// the OMS sets — is refused with the reason.
pub fn wms_update(current: ShipmentStatus, requested: ShipmentStatus) -> Result<Step, String> {
    if current == requested {
        return Ok(Step::Repeat);
    }
    match requested.required_before() {
        None => Err(format!(
            "the WMS cannot set a shipment {}",
            requested.as_str()
        )),
        Some(before) if before == current => Ok(Step::Advance),
        Some(before) => Err(format!(
            "a {} shipment cannot become {}: it must be {} first",
            current.as_str(),
            requested.as_str(),
            before.as_str()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::ShipmentStatus::*;
    use super::*;

    #[test]
    fn the_wms_moves_a_shipment_forward_one_step_at_a_time() {
        for (from, to) in [
            (Released, Picked),
            (Picked, Packed),
            (Packed, Shipped),
            (Shipped, Delivered),
            (Shipped, Rto),
        ] {
            assert_eq!(wms_update(from, to), Ok(Step::Advance), "{from:?} → {to:?}");
        }
    }

    #[test]
    fn repeats_are_no_ops_and_everything_else_is_refused() {
        for status in ShipmentStatus::ALL {
            assert_eq!(wms_update(status, status), Ok(Step::Repeat));
        }
        for (from, to) in [
            (Released, Packed),
            (Released, Shipped),
            (Picked, Released),
            (Packed, Picked),
            (Delivered, Rto),
            (Rto, Delivered),
            (Cancelled, Picked),
            (Packed, Cancelled),
            (Delivered, Shipped),
        ] {
            assert!(wms_update(from, to).is_err(), "{from:?} → {to:?}");
        }
    }

    #[test]
    fn only_released_units_may_be_cancelled_and_only_live_ones_hold_stock() {
        assert!(Released.is_cancellable());
        assert!(!Picked.is_cancellable());
        assert!(Packed.is_live() && !Shipped.is_live() && !Cancelled.is_live());
        assert_eq!(ShipmentStatus::parse("RTO"), Some(Rto));
    }
}
