//! Master data other than SKUs: clients, warehouses, channels, suppliers and customers.

use serde::{Deserialize, Serialize};

use crate::validation::{
    FieldError, Problems, optional_float, optional_integer, optional_text, required_text,
};

pub const NAME_CHARS_MAX: usize = 200;
pub const ADDRESS_CHARS_MAX: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub name: String,
}

impl Client {
    pub fn validate(name: Option<&str>) -> Result<Client, Vec<FieldError>> {
        let mut problems = Problems::new();
        let name = problems.take("name", required_text(name, NAME_CHARS_MAX));
        problems.finish(|| Client {
            name: name.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WarehouseKind {
    Warehouse,
    Store,
}

impl WarehouseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WarehouseKind::Warehouse => "WAREHOUSE",
            WarehouseKind::Store => "STORE",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "WAREHOUSE" => Ok(WarehouseKind::Warehouse),
            "STORE" => Ok(WarehouseKind::Store),
            other => Err(format!("must be WAREHOUSE or STORE, got {other:?}")),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct WarehouseDraft {
    pub name: Option<String>,
    pub kind: Option<String>,
    pub address: Option<String>,
    pub pincode: Option<String>,
    pub lat: Option<String>,
    pub lon: Option<String>,
    pub priority: Option<String>,
}

/// A fulfilment location. `priority`: higher is preferred when routing ties.
#[derive(Debug, Clone, PartialEq)]
pub struct Warehouse {
    pub name: String,
    pub kind: WarehouseKind,
    pub address: Option<String>,
    pub pincode: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub priority: i64,
}

impl WarehouseDraft {
    pub fn validate(&self) -> Result<Warehouse, Vec<FieldError>> {
        let mut problems = Problems::new();
        let name = problems.take("name", required_text(self.name.as_deref(), NAME_CHARS_MAX));
        let kind = problems.take(
            "type",
            required_text(self.kind.as_deref(), 16).and_then(|k| WarehouseKind::parse(&k)),
        );
        let address = problems.take(
            "address",
            optional_text(self.address.as_deref(), ADDRESS_CHARS_MAX),
        );
        let pincode = problems.take(
            "pincode",
            required_text(self.pincode.as_deref(), 16).and_then(validate_pincode),
        );
        let lat = problems.take("lat", optional_float(self.lat.as_deref(), -90.0, 90.0));
        let lon = problems.take("lon", optional_float(self.lon.as_deref(), -180.0, 180.0));
        if lat.flatten().is_some() != lon.flatten().is_some() && lat.is_some() && lon.is_some() {
            problems.add("lat", "lat and lon come together");
        }
        let priority = problems.take(
            "priority",
            optional_integer(self.priority.as_deref(), -1_000_000, 1_000_000),
        );
        problems.finish(|| Warehouse {
            name: name.unwrap_or_default(),
            kind: kind.unwrap_or(WarehouseKind::Warehouse),
            address: address.flatten(),
            pincode: pincode.unwrap_or_default(),
            lat: lat.flatten(),
            lon: lon.flatten(),
            priority: priority.flatten().unwrap_or(0),
        })
    }
}

/// Postal codes: 3 to 10 letters, digits, spaces or dashes (Indian pincodes are 6 digits).
fn validate_pincode(text: String) -> Result<String, String> {
    let ok = (3..=10).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
    if ok {
        Ok(text)
    } else {
        Err(format!("must be 3 to 10 letters or digits, got {text:?}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChannelKind {
    Marketplace,
    Website,
    B2b,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Marketplace => "MARKETPLACE",
            ChannelKind::Website => "WEBSITE",
            ChannelKind::B2b => "B2B",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "MARKETPLACE" => Ok(ChannelKind::Marketplace),
            "WEBSITE" => Ok(ChannelKind::Website),
            "B2B" => Ok(ChannelKind::B2b),
            other => Err(format!(
                "must be MARKETPLACE, WEBSITE or B2B, got {other:?}"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
}

impl Channel {
    pub fn validate(name: Option<&str>, kind: Option<&str>) -> Result<Channel, Vec<FieldError>> {
        let mut problems = Problems::new();
        let name = problems.take("name", required_text(name, NAME_CHARS_MAX));
        let kind = problems.take(
            "type",
            required_text(kind, 16).and_then(|k| ChannelKind::parse(&k)),
        );
        problems.finish(|| Channel {
            name: name.unwrap_or_default(),
            kind: kind.unwrap_or(ChannelKind::Marketplace),
        })
    }
}

/// Suppliers (B2B inward) and customers (B2B outward) share one shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerKind {
    Supplier,
    Customer,
}

impl PartnerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerKind::Supplier => "SUPPLIER",
            PartnerKind::Customer => "CUSTOMER",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartnerDraft {
    pub name: Option<String>,
    pub address: Option<String>,
    pub pincode: Option<String>,
    pub gstin: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub name: String,
    pub address: Option<String>,
    pub pincode: Option<String>,
    pub gstin: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

impl PartnerDraft {
    pub fn validate(&self) -> Result<Partner, Vec<FieldError>> {
        let mut problems = Problems::new();
        let name = problems.take("name", required_text(self.name.as_deref(), NAME_CHARS_MAX));
        let address = problems.take(
            "address",
            optional_text(self.address.as_deref(), ADDRESS_CHARS_MAX),
        );
        let pincode = problems.take(
            "pincode",
            optional_text(self.pincode.as_deref(), 16)
                .and_then(|p| p.map(validate_pincode).transpose()),
        );
        let gstin = problems.take(
            "gstin",
            optional_text(self.gstin.as_deref(), 15)
                .and_then(|g| g.map(validate_gstin).transpose()),
        );
        let phone = problems.take(
            "phone",
            optional_text(self.phone.as_deref(), 20)
                .and_then(|p| p.map(validate_phone).transpose()),
        );
        let email = problems.take(
            "email",
            optional_text(self.email.as_deref(), 254)
                .and_then(|e| e.map(validate_email).transpose()),
        );
        problems.finish(|| Partner {
            name: name.unwrap_or_default(),
            address: address.flatten(),
            pincode: pincode.flatten(),
            gstin: gstin.flatten(),
            phone: phone.flatten(),
            email: email.flatten(),
        })
    }
}

/// GSTIN: India's 15-character tax identity, letters and digits.
fn validate_gstin(text: String) -> Result<String, String> {
    if text.len() == 15 && text.chars().all(|c| c.is_ascii_alphanumeric()) {
        Ok(text.to_ascii_uppercase())
    } else {
        Err(format!("must be 15 letters and digits, got {text:?}"))
    }
}

/// Phones: digits with an optional leading `+` and spaces or dashes, 6 to 15 digits.
pub fn validate_phone(text: String) -> Result<String, String> {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    let shape_ok = text
        .char_indices()
        .all(|(i, c)| c.is_ascii_digit() || c == ' ' || c == '-' || (c == '+' && i == 0));
    if shape_ok && (6..=15).contains(&digits) {
        Ok(text)
    } else {
        Err(format!("must be a phone number, got {text:?}"))
    }
}

/// A plausible e-mail address: one `@` with text on both sides and no spaces.
pub fn validate_email(text: String) -> Result<String, String> {
    let ok = match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && !text.contains(char::is_whitespace)
        }
        None => false,
    };
    if ok {
        Ok(text)
    } else {
        Err(format!("must be an e-mail address, got {text:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warehouse_needs_name_type_and_pincode_and_bounds_coordinates() {
        let errors = WarehouseDraft {
            kind: Some("DEPOT".into()),
            lat: Some("91".into()),
            ..WarehouseDraft::default()
        }
        .validate()
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "type", "pincode", "lat"]);
    }

    #[test]
    fn warehouse_defaults_priority_to_zero() {
        let warehouse = WarehouseDraft {
            name: Some("Bengaluru 1".into()),
            kind: Some("WAREHOUSE".into()),
            pincode: Some("560001".into()),
            lat: Some("12.97".into()),
            lon: Some("77.59".into()),
            ..WarehouseDraft::default()
        }
        .validate()
        .unwrap();
        assert_eq!(warehouse.priority, 0);
        assert_eq!(warehouse.lat, Some(12.97));
    }

    #[test]
    fn lat_without_lon_is_refused() {
        let errors = WarehouseDraft {
            name: Some("W".into()),
            kind: Some("STORE".into()),
            pincode: Some("560001".into()),
            lat: Some("12.97".into()),
            ..WarehouseDraft::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(errors[0].field, "lat");
    }

    #[test]
    fn partner_fields_are_checked() {
        let errors = PartnerDraft {
            name: Some("Acme".into()),
            gstin: Some("123".into()),
            phone: Some("call me".into()),
            email: Some("nobody".into()),
            ..PartnerDraft::default()
        }
        .validate()
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["gstin", "phone", "email"]);
        assert!(
            PartnerDraft {
                name: Some("Acme".into()),
                phone: Some("+91 98450-12345".into()),
                email: Some("ops@acme.in".into()),
                ..PartnerDraft::default()
            }
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn channel_types_are_the_api_words() {
        assert!(Channel::validate(Some("Myntra"), Some("MARKETPLACE")).is_ok());
        assert!(Channel::validate(Some("Myntra"), Some("marketplace")).is_err());
    }
}
