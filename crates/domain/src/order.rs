//! Outward orders: what arrives (validated whole), the line arithmetic of DESIGN.md §4
//! item 4, and the order status derived from lines and shipments.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::allocation::FulfilmentType;
use crate::code::Code;
use crate::decimal::parse_hundredths;
use crate::inward::{LINE_QTY_MAX, line_qty};
use crate::masters::{validate_email, validate_phone};
use crate::validation::{FieldError, Problems, optional_float, optional_text, required_text};

pub const ORDER_LINES_MAX: usize = 500;
pub const PRIORITY_MAX: i64 = 1_000;
const _: () = assert!((ORDER_LINES_MAX as i64).checked_mul(LINE_QTY_MAX).is_some());

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderKind {
    /// A marketplace or web order to a consumer.
    B2c,
    /// A B2B sales order.
    So,
    /// A stock transfer to another warehouse.
    St,
    /// Return to origin: goods sent back to their supplier.
    Rto,
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::B2c => "B2C",
            OrderKind::So => "SO",
            OrderKind::St => "ST",
            OrderKind::Rto => "RTO",
        }
    }

    pub fn parse(text: &str) -> Result<OrderKind, String> {
        match text {
            "B2C" => Ok(OrderKind::B2c),
            "SO" => Ok(OrderKind::So),
            "ST" => Ok(OrderKind::St),
            "RTO" => Ok(OrderKind::Rto),
            other => Err(format!("must be B2C, SO, ST or RTO, got {other:?}")),
        }
    }

    /// B2B kinds name the warehouse they ship from; B2C orders are routed.
    pub fn names_its_warehouse(self) -> bool {
        self != OrderKind::B2c
    }
}

impl FulfilmentType {
    pub fn as_str(self) -> &'static str {
        match self {
            FulfilmentType::BlockComplete => "BLOCK_COMPLETE",
            FulfilmentType::MultiShipmentPartial => "MULTI_SHIPMENT_PARTIAL",
            FulfilmentType::SingleShipmentPartial => "SINGLE_SHIPMENT_PARTIAL",
        }
    }

    pub fn parse(text: &str) -> Result<FulfilmentType, String> {
        match text {
            "BLOCK_COMPLETE" => Ok(FulfilmentType::BlockComplete),
            "MULTI_SHIPMENT_PARTIAL" => Ok(FulfilmentType::MultiShipmentPartial),
            "SINGLE_SHIPMENT_PARTIAL" => Ok(FulfilmentType::SingleShipmentPartial),
            other => Err(format!(
                "must be BLOCK_COMPLETE, MULTI_SHIPMENT_PARTIAL or SINGLE_SHIPMENT_PARTIAL, got {other:?}"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Retry {
    /// The allocator retries open quantity until it is allocated or cancelled.
    Auto,
    /// One attempt; the rest waits for a person.
    None,
}

impl Retry {
    pub fn as_str(self) -> &'static str {
        match self {
            Retry::Auto => "AUTO",
            Retry::None => "NONE",
        }
    }

    pub fn parse(text: &str) -> Result<Retry, String> {
        match text {
            "AUTO" => Ok(Retry::Auto),
            "NONE" => Ok(Retry::None),
            other => Err(format!("must be AUTO or NONE, got {other:?}")),
        }
    }
}

/// Which stock an order draws: good stock by pool, or bad stock (RTO only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StockKind {
    Good,
    Bad,
}

impl StockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StockKind::Good => "GOOD",
            StockKind::Bad => "BAD",
        }
    }

    pub fn parse(text: &str) -> Result<StockKind, String> {
        match text {
            "GOOD" => Ok(StockKind::Good),
            "BAD" => Ok(StockKind::Bad),
            other => Err(format!("must be GOOD or BAD, got {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShipTo {
    pub name: String,
    pub address: String,
    pub pincode: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewOrderLine {
    pub line_id: Code,
    pub sku: Code,
    pub qty: i64,
    pub price_minor: Option<i64>,
}

/// A new outward order, validated; codes still to be resolved by the store. Its
/// serialisation is the order's identity for idempotent ingestion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewOrder {
    pub order_code: Code,
    pub kind: OrderKind,
    pub channel: Code,
    pub fulfilment_type: FulfilmentType,
    pub retry: Retry,
    pub dispatch_by: Option<i64>,
    pub priority: i64,
    pub warehouse: Option<Code>,
    pub destination_warehouse: Option<Code>,
    pub stock: StockKind,
    pub ship_to: Option<ShipTo>,
    pub lines: Vec<NewOrderLine>,
}

/// An order as it arrives: text fields from a JSON body or a CSV file alike.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderDraft {
    pub order_code: Option<String>,
    pub kind: Option<String>,
    pub channel: Option<String>,
    pub fulfilment_type: Option<String>,
    pub retry: Option<String>,
    pub dispatch_by: Option<String>,
    pub priority: Option<String>,
    pub warehouse: Option<String>,
    pub destination_warehouse: Option<String>,
    pub stock: Option<String>,
    pub ship_to: ShipToDraft,
    pub lines: Vec<OrderLineDraft>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShipToDraft {
    pub name: Option<String>,
    pub address: Option<String>,
    pub pincode: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub lat: Option<String>,
    pub lon: Option<String>,
}

impl ShipToDraft {
    fn is_empty(&self) -> bool {
        *self == ShipToDraft::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderLineDraft {
    pub line_id: Option<String>,
    pub sku: Option<String>,
    pub qty: Option<String>,
    pub price: Option<String>,
}

fn required<T>(
    value: Option<&str>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, String> {
    match value.map(str::trim) {
        None | Some("") => Err("is required".into()),
        Some(text) => parse(text),
    }
}

impl OrderDraft {
    /// Checks every field, reporting all problems at once. `parse_time` turns RFC 3339
    /// into microseconds (the edge owns the calendar).
    pub fn validate(
        &self,
        parse_time: impl Fn(&str) -> Result<i64, String>,
    ) -> Result<NewOrder, Vec<FieldError>> {
        let mut p = Problems::new();
        let order_code = p.take("order_code", Code::required(self.order_code.as_deref()));
        let kind = p.take("kind", required(self.kind.as_deref(), OrderKind::parse));
        let channel = p.take("channel", Code::required(self.channel.as_deref()));
        let fulfilment_type = p.take(
            "fulfilment_type",
            required(self.fulfilment_type.as_deref(), FulfilmentType::parse),
        );
        let retry = match self
            .retry
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            None => Some(Retry::Auto),
            Some(text) => p.take("retry", Retry::parse(text)),
        };
        let dispatch_by = match self
            .dispatch_by
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            None => Some(None),
            Some(text) => p.take("dispatch_by", parse_time(text).map(Some)),
        };
        let priority = p.take(
            "priority",
            crate::validation::optional_integer(
                self.priority.as_deref(),
                -PRIORITY_MAX,
                PRIORITY_MAX,
            ),
        );
        let warehouse = optional_code(&mut p, "warehouse", self.warehouse.as_deref());
        let destination = optional_code(
            &mut p,
            "destination_warehouse",
            self.destination_warehouse.as_deref(),
        );
        let stock = match self
            .stock
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            None => Some(StockKind::Good),
            Some(text) => p.take("stock", StockKind::parse(text)),
        };
        if let Some(kind) = kind {
            if kind.names_its_warehouse() && warehouse.as_ref().is_some_and(Option::is_none) {
                p.add(
                    "warehouse",
                    format!(
                        "a {} order names the warehouse it ships from",
                        kind.as_str()
                    ),
                );
            }
            if kind == OrderKind::St && destination.as_ref().is_some_and(Option::is_none) {
                p.add(
                    "destination_warehouse",
                    "a stock transfer names the warehouse it goes to",
                );
            }
            if kind != OrderKind::St && destination.as_ref().is_some_and(Option::is_some) {
                p.add(
                    "destination_warehouse",
                    "only a stock transfer has a destination warehouse",
                );
            }
            if stock == Some(StockKind::Bad) && kind != OrderKind::Rto {
                p.add("stock", "only an RTO order may draw bad stock");
            }
        }
        let ship_to = self.validated_ship_to(&mut p, kind);
        let lines = self.validated_lines(&mut p);
        match (
            order_code,
            kind,
            channel,
            fulfilment_type,
            retry,
            dispatch_by,
            priority,
            warehouse,
            destination,
            stock,
            ship_to,
        ) {
            (
                Some(order_code),
                Some(kind),
                Some(channel),
                Some(fulfilment_type),
                Some(retry),
                Some(dispatch_by),
                Some(priority),
                Some(warehouse),
                Some(destination_warehouse),
                Some(stock),
                Some(ship_to),
            ) if p.is_empty() => Ok(NewOrder {
                order_code,
                kind,
                channel,
                fulfilment_type,
                retry,
                dispatch_by,
                priority: priority.unwrap_or(0),
                warehouse,
                destination_warehouse,
                stock,
                ship_to,
                lines,
            }),
            _ => Err(p.into_vec()),
        }
    }

    fn validated_ship_to(
        &self,
        p: &mut Problems,
        kind: Option<OrderKind>,
    ) -> Option<Option<ShipTo>> {
        let draft = &self.ship_to;
        if draft.is_empty() {
            if kind == Some(OrderKind::B2c) {
                p.add("ship_to", "a B2C order needs its ship-to address");
                return None;
            }
            return Some(None);
        }
        let name = p.take("ship_to.name", required_text(draft.name.as_deref(), 200));
        let address = p.take(
            "ship_to.address",
            required_text(draft.address.as_deref(), 500),
        );
        let pincode = p.take(
            "ship_to.pincode",
            required_text(draft.pincode.as_deref(), 16),
        );
        let phone = p.take(
            "ship_to.phone",
            optional_text(draft.phone.as_deref(), 20)
                .and_then(|v| v.map(validate_phone).transpose()),
        );
        let email = p.take(
            "ship_to.email",
            optional_text(draft.email.as_deref(), 254)
                .and_then(|v| v.map(validate_email).transpose()),
        );
        let lat = p.take(
            "ship_to.lat",
            optional_float(draft.lat.as_deref(), -90.0, 90.0),
        );
        let lon = p.take(
            "ship_to.lon",
            optional_float(draft.lon.as_deref(), -180.0, 180.0),
        );
        if let (Some(lat), Some(lon)) = (lat, lon)
            && lat.is_some() != lon.is_some()
        {
            p.add("ship_to.lat", "lat and lon come together");
            return None;
        }
        Some(Some(ShipTo {
            name: name?,
            address: address?,
            pincode: pincode?,
            phone: phone?,
            email: email?,
            lat: lat?,
            lon: lon?,
        }))
    }

    fn validated_lines(&self, p: &mut Problems) -> Vec<NewOrderLine> {
        if self.lines.is_empty() {
            p.add("lines", "an order needs at least one line");
        }
        if self.lines.len() > ORDER_LINES_MAX {
            p.add("lines", format!("at most {ORDER_LINES_MAX} lines"));
            return Vec::new();
        }
        let mut seen = BTreeSet::new();
        let mut lines = Vec::with_capacity(self.lines.len());
        for (index, line) in self.lines.iter().enumerate() {
            let field = |name: &str| format!("lines[{index}].{name}");
            let line_id = p.take(&field("line_id"), Code::required(line.line_id.as_deref()));
            let sku = p.take(&field("sku"), Code::required(line.sku.as_deref()));
            let qty = p.take(&field("qty"), line_qty(line.qty.as_deref()));
            let price = match line
                .price
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                None => Some(None),
                Some(text) => p.take(&field("price"), parse_hundredths(text).map(Some)),
            };
            if let Some(line_id) = &line_id
                && !seen.insert(line_id.clone())
            {
                p.add(
                    field("line_id"),
                    format!("{line_id} appears on another line"),
                );
            }
            if let (Some(line_id), Some(sku), Some(qty), Some(price_minor)) =
                (line_id, sku, qty, price)
            {
                lines.push(NewOrderLine {
                    line_id,
                    sku,
                    qty,
                    price_minor,
                });
            }
        }
        lines
    }
}

fn optional_code(p: &mut Problems, field: &str, value: Option<&str>) -> Option<Option<Code>> {
    match value.map(str::trim).filter(|t| !t.is_empty()) {
        None => Some(None),
        Some(text) => p.take(field, Code::parse(text).map(Some)),
    }
}

/// One order line's counts. Invariant: each ≥ 0 and
/// `ordered = open + allocated + shipped + cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LineCounts {
    pub ordered: i64,
    /// Bound to stock and not yet shipped.
    pub allocated: i64,
    pub shipped: i64,
    pub cancelled: i64,
}

impl LineCounts {
    pub fn open(&self) -> i64 {
        self.ordered - self.allocated - self.shipped - self.cancelled
    }

    /// Every breach of DESIGN.md §4 item 4 on this line.
    pub fn breaches(&self) -> Vec<String> {
        let mut breaches = Vec::new();
        for (name, value) in [
            ("ordered", self.ordered),
            ("allocated", self.allocated),
            ("shipped", self.shipped),
            ("cancelled", self.cancelled),
            ("open", self.open()),
        ] {
            if value < 0 {
                breaches.push(format!("{name} is {value}, below zero"));
            }
        }
        breaches
    }
}

/// How a seller cancellation of `qty` units of one line is taken: open units first (they
/// hold no stock), then units allocated in shipments the WMS has not picked, in the order
/// given (`unpicked`, units per allocation). Answers the units taken from open and, per
/// allocation, the units taken from it (0 for those untouched); or, when `qty` is more than
/// can be cancelled now, `Err` with what can.
pub fn plan_line_cancellation(
    open: i64,
    unpicked: &[i64],
    qty: i64,
) -> Result<(i64, Vec<i64>), i64> {
    let cancellable = open.max(0) + unpicked.iter().map(|q| (*q).max(0)).sum::<i64>();
    if qty > cancellable {
        return Err(cancellable);
    }
    let from_open = qty.min(open.max(0));
    let mut rest = qty - from_open;
    let takes = unpicked
        .iter()
        .map(|held| {
            let take = rest.min((*held).max(0));
            rest -= take;
            take
        })
        .collect();
    Ok((from_open, takes))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Created,
    Unfulfillable,
    PartiallyAllocated,
    Allocated,
    Released,
    PartiallyShipped,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "CREATED",
            OrderStatus::Unfulfillable => "UNFULFILLABLE",
            OrderStatus::PartiallyAllocated => "PARTIALLY_ALLOCATED",
            OrderStatus::Allocated => "ALLOCATED",
            OrderStatus::Released => "RELEASED",
            OrderStatus::PartiallyShipped => "PARTIALLY_SHIPPED",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    pub const ALL: [OrderStatus; 9] = [
        OrderStatus::Created,
        OrderStatus::Unfulfillable,
        OrderStatus::PartiallyAllocated,
        OrderStatus::Allocated,
        OrderStatus::Released,
        OrderStatus::PartiallyShipped,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn parse(text: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The order's status from its lines, whether any allocation was attempted, and whether
/// every shipment that shipped was delivered. Shipments are released the moment they are
/// allocated, so a fully allocated order is `RELEASED`.
pub fn derive_status(
    lines: &[LineCounts],
    attempted: bool,
    all_shipped_delivered: bool,
) -> OrderStatus {
    let sum = |f: fn(&LineCounts) -> i64| lines.iter().map(f).sum::<i64>();
    let (ordered, allocated, shipped, cancelled) = (
        sum(|l| l.ordered),
        sum(|l| l.allocated),
        sum(|l| l.shipped),
        sum(|l| l.cancelled),
    );
    let open = ordered - allocated - shipped - cancelled;
    if cancelled == ordered {
        OrderStatus::Cancelled
    } else if open == 0 && allocated == 0 {
        if all_shipped_delivered {
            OrderStatus::Delivered
        } else {
            OrderStatus::Shipped
        }
    } else if shipped > 0 {
        OrderStatus::PartiallyShipped
    } else if open == 0 {
        OrderStatus::Released
    } else if allocated > 0 {
        OrderStatus::PartiallyAllocated
    } else if attempted {
        OrderStatus::Unfulfillable
    } else {
        OrderStatus::Created
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_time(text: &str) -> Result<i64, String> {
        text.parse().map_err(|_| "bad time".to_owned())
    }

    fn draft() -> OrderDraft {
        OrderDraft {
            order_code: Some("MYN-1".into()),
            kind: Some("B2C".into()),
            channel: Some("MYNTRA".into()),
            fulfilment_type: Some("MULTI_SHIPMENT_PARTIAL".into()),
            ship_to: ShipToDraft {
                name: Some("Asha".into()),
                address: Some("12 MG Road".into()),
                pincode: Some("560001".into()),
                phone: Some("+91 98450 12345".into()),
                ..ShipToDraft::default()
            },
            lines: vec![OrderLineDraft {
                line_id: Some("1".into()),
                sku: Some("TEE".into()),
                qty: Some("2".into()),
                price: Some("499.5".into()),
            }],
            ..OrderDraft::default()
        }
    }

    #[test]
    fn a_b2c_order_validates_with_defaults() {
        let order = draft().validate(parse_time).unwrap();
        assert_eq!(order.retry, Retry::Auto);
        assert_eq!(order.stock, StockKind::Good);
        assert_eq!(order.priority, 0);
        assert_eq!(order.lines[0].price_minor, Some(49950));
    }

    #[test]
    fn b2b_kinds_name_their_warehouse_and_only_rto_draws_bad_stock() {
        let mut so = draft();
        so.kind = Some("SO".into());
        so.stock = Some("BAD".into());
        let errors = so.validate(parse_time).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["warehouse", "stock"]);
        let mut st = draft();
        st.kind = Some("ST".into());
        st.warehouse = Some("BLR1".into());
        assert_eq!(
            st.validate(parse_time).unwrap_err()[0].field,
            "destination_warehouse"
        );
        let mut rto = draft();
        rto.kind = Some("RTO".into());
        rto.warehouse = Some("BLR1".into());
        rto.stock = Some("BAD".into());
        assert!(rto.validate(parse_time).is_ok());
    }

    #[test]
    fn every_problem_is_reported() {
        let bad = OrderDraft {
            lines: vec![
                OrderLineDraft {
                    line_id: Some("1".into()),
                    sku: Some("TEE".into()),
                    qty: Some("0".into()),
                    price: None,
                },
                OrderLineDraft {
                    line_id: Some("1".into()),
                    sku: None,
                    qty: Some("1".into()),
                    price: Some("1.234".into()),
                },
            ],
            ..OrderDraft::default()
        };
        let errors = bad.validate(parse_time).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "order_code",
                "kind",
                "channel",
                "fulfilment_type",
                "lines[0].qty",
                "lines[1].sku",
                "lines[1].price",
                "lines[1].line_id"
            ]
        );
    }

    #[test]
    fn b2c_needs_a_ship_to() {
        let mut order = draft();
        order.ship_to = ShipToDraft::default();
        assert_eq!(order.validate(parse_time).unwrap_err()[0].field, "ship_to");
    }

    #[test]
    fn cancellation_takes_open_units_first_then_unpicked_ones_in_order() {
        assert_eq!(plan_line_cancellation(2, &[3, 4], 1), Ok((1, vec![0, 0])));
        assert_eq!(plan_line_cancellation(2, &[3, 4], 4), Ok((2, vec![2, 0])));
        assert_eq!(plan_line_cancellation(2, &[3, 4], 9), Ok((2, vec![3, 4])));
        assert_eq!(plan_line_cancellation(2, &[3, 4], 10), Err(9));
        assert_eq!(plan_line_cancellation(0, &[], 1), Err(0));
        assert_eq!(plan_line_cancellation(0, &[5], 5), Ok((0, vec![5])));
    }

    #[test]
    fn status_follows_the_lines() {
        let line = |ordered, allocated, shipped, cancelled| LineCounts {
            ordered,
            allocated,
            shipped,
            cancelled,
        };
        assert_eq!(
            derive_status(&[line(2, 0, 0, 0)], false, false),
            OrderStatus::Created
        );
        assert_eq!(
            derive_status(&[line(2, 0, 0, 0)], true, false),
            OrderStatus::Unfulfillable
        );
        assert_eq!(
            derive_status(&[line(2, 1, 0, 0)], true, false),
            OrderStatus::PartiallyAllocated
        );
        assert_eq!(
            derive_status(&[line(2, 2, 0, 0)], true, false),
            OrderStatus::Released
        );
        assert_eq!(
            derive_status(&[line(2, 1, 0, 1)], true, false),
            OrderStatus::Released
        );
        assert_eq!(
            derive_status(&[line(2, 1, 1, 0)], true, false),
            OrderStatus::PartiallyShipped
        );
        assert_eq!(
            derive_status(&[line(2, 0, 2, 0)], true, false),
            OrderStatus::Shipped
        );
        assert_eq!(
            derive_status(&[line(2, 0, 2, 0)], true, true),
            OrderStatus::Delivered
        );
        assert_eq!(
            derive_status(&[line(2, 0, 0, 2)], true, false),
            OrderStatus::Cancelled
        );
        assert!(line(2, 1, 1, 1).breaches().len() == 1);
    }
}
