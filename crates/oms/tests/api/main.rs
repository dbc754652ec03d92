//! HTTP-level tests against the real server, each run on SQLite and on PostgreSQL.

mod helpers;

mod clients;
mod documents;
mod exports;
mod fulfilment;
mod intake;
mod inventory;
mod masters;
mod matrix;
mod model;
mod operations;
mod orders;
mod panel;
mod races;
mod settings;
mod uploads;
mod webhooks;
