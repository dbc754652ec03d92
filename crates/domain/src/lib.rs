//! The OMS's business rules: pure Rust, no I/O, no async, no database or HTTP types.
//!
//! Edges turn requests into the drafts and inputs defined here; the domain validates them
//! and decides; the store writes what the domain decided.

pub mod access;
pub mod allocation;
pub mod code;
pub mod decimal;
pub mod inventory;
pub mod invoice;
pub mod inward;
pub mod masters;
pub mod order;
pub mod settings;
pub mod shipment;
pub mod sku;
pub mod validation;
