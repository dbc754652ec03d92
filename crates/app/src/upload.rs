//! CSV uploads: a file is read and validated whole before anything is written; a bad file
//! answers with every bad row and writes nothing, a good one is written in one transaction.

use std::collections::HashMap;

use oms_domain::code::Code;
use oms_domain::masters::PartnerKind;
use oms_domain::validation::FieldError;
use oms_store::{ClientId, Store, partners, skus};

use crate::clock::now_micros;
use crate::error::{ApiError, ApiResult, RowError};
use crate::fields::Fields;
use crate::service;

/// Error rows listed in one answer; the message still counts them all.
pub const ROW_ERRORS_LISTED_MAX: usize = 10_000;

/// What an upload can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    Skus,
    Suppliers,
    Customers,
}

impl UploadKind {
    pub const ALL: [UploadKind; 3] = [
        UploadKind::Skus,
        UploadKind::Suppliers,
        UploadKind::Customers,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UploadKind::Skus => "skus",
            UploadKind::Suppliers => "suppliers",
            UploadKind::Customers => "customers",
        }
    }

    pub fn parse(text: &str) -> Option<UploadKind> {
        UploadKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The columns a file of this kind may have, besides `attr.<name>` for SKUs.
    fn columns(self) -> &'static [&'static str] {
        match self {
            UploadKind::Skus => service::SKU_FIELDS,
            UploadKind::Suppliers | UploadKind::Customers => service::PARTNER_FIELDS,
        }
    }

    /// A header template, for people preparing a file.
    pub fn template(self) -> String {
        let mut columns = vec!["code"];
        columns.extend_from_slice(self.columns());
        columns.join(",") + "\n"
    }
}

/// SKU attributes are `attr.<name>` in a file and `attributes.<name>` in JSON.
const ATTRIBUTE_COLUMN_PREFIX: &str = "attr.";
const ATTRIBUTE_FIELD_PREFIX: &str = "attributes.";

fn column_of(field: &str) -> String {
    match field.strip_prefix(ATTRIBUTE_FIELD_PREFIX) {
        Some(name) => format!("{ATTRIBUTE_COLUMN_PREFIX}{name}"),
        None => field.to_owned(),
    }
}

/// One data row of a file: its number (the header is row 1), its code and its fields.
#[derive(Debug)]
struct Row {
    number: u64,
    code: Code,
    fields: Fields,
}

/// Reads `bytes` as CSV of `kind`: checks the header and every row's code, and refuses a
/// code given twice. Field values are checked later, by the kind's own validation, so a
/// file's answer lists every bad row: the rows read, and the errors found so far.
fn read_rows(
    kind: UploadKind,
    bytes: &[u8],
    rows_max: usize,
) -> Result<(Vec<Row>, Vec<RowError>), Vec<RowError>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let header_error = |column: &str, message: String| RowError {
        row: 1,
        column: column.to_owned(),
        message,
    };
    let headers = match reader.headers() {
        Ok(headers) => headers
            .iter()
            .map(|h| h.trim().to_owned())
            .collect::<Vec<_>>(),
        Err(e) => return Err(vec![header_error("", format!("unreadable header: {e}"))]),
    };
    let mut errors = Vec::new();
    let mut field_names = Vec::with_capacity(headers.len());
    for (index, header) in headers.iter().enumerate() {
        if headers[..index].contains(header) {
            errors.push(header_error(header, "appears twice".into()));
        }
        let field = match header.strip_prefix(ATTRIBUTE_COLUMN_PREFIX) {
            Some(name) if kind == UploadKind::Skus && !name.is_empty() => {
                format!("{ATTRIBUTE_FIELD_PREFIX}{name}")
            }
            _ if header == "code" || kind.columns().contains(&header.as_str()) => header.clone(),
            _ => {
                errors.push(header_error(header, "is not a known column".into()));
                header.clone()
            }
        };
        field_names.push(field);
    }
    if !headers.iter().any(|h| h == "code") {
        errors.push(header_error("code", "is required".into()));
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut rows = Vec::new();
    let mut first_row_of: HashMap<String, u64> = HashMap::new();
    for (index, record) in reader.records().enumerate() {
        let number = index as u64 + 2;
        if rows.len() >= rows_max {
            errors.push(RowError {
                row: number,
                column: String::new(),
                message: format!("a file holds at most {rows_max} rows"),
            });
            break;
        }
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                errors.push(RowError {
                    row: number,
                    column: String::new(),
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let mut code = None;
        let mut pairs = Vec::new();
        for (field, value) in field_names.iter().zip(record.iter()) {
            if field == "code" {
                code = Some(value.trim().to_owned());
            } else if !value.trim().is_empty() {
                pairs.push((field.clone(), value.to_owned()));
            }
        }
        match Code::required(code.as_deref()) {
            Err(message) => errors.push(RowError {
                row: number,
                column: "code".into(),
                message,
            }),
            Ok(code) => match first_row_of.get(code.as_str()) {
                Some(first) => errors.push(RowError {
                    row: number,
                    column: "code".into(),
                    message: format!("{code} appears already in row {first}"),
                }),
                None => {
                    first_row_of.insert(code.as_str().to_owned(), number);
                    rows.push(Row {
                        number,
                        code,
                        fields: Fields::from_pairs(pairs),
                    });
                }
            },
        }
    }
    Ok((rows, errors))
}

fn row_errors(number: u64, problems: Vec<FieldError>) -> impl Iterator<Item = RowError> {
    problems.into_iter().map(move |p| RowError {
        row: number,
        column: column_of(&p.field),
        message: p.message,
    })
}

/// Validates every row with `validate`; all good rows, or every error of the file.
fn validate_rows<T>(
    rows: Vec<Row>,
    mut earlier_errors: Vec<RowError>,
    validate: impl Fn(&Fields) -> Result<T, Vec<FieldError>>,
) -> Result<Vec<(String, T)>, Vec<RowError>> {
    let mut valid = Vec::with_capacity(rows.len());
    for row in rows {
        match validate(&row.fields) {
            Ok(value) => valid.push((row.code.into_string(), value)),
            Err(problems) => earlier_errors.extend(row_errors(row.number, problems)),
        }
    }
    if earlier_errors.is_empty() {
        Ok(valid)
    } else {
        earlier_errors.sort_by_key(|e| e.row);
        Err(earlier_errors)
    }
}

fn refused(mut errors: Vec<RowError>) -> ApiError {
    let bad_rows = {
        let mut rows: Vec<u64> = errors.iter().map(|e| e.row).collect();
        rows.dedup();
        rows.len()
    };
    errors.truncate(ROW_ERRORS_LISTED_MAX);
    ApiError::InvalidRows {
        message: format!("{bad_rows} rows have errors; nothing was written"),
        details: errors,
    }
}

/// Validates and applies one uploaded file of `kind`; answers the number of rows written.
pub async fn apply(
    store: &Store,
    client: ClientId,
    kind: UploadKind,
    bytes: &[u8],
    rows_max: usize,
) -> ApiResult<usize> {
    let (rows, read_errors) = read_rows(kind, bytes, rows_max).map_err(refused)?;
    let count = rows.len();
    let at = now_micros();
    match kind {
        UploadKind::Skus => {
            let settings = service::settings(store, client).await?;
            let skus = validate_rows(rows, read_errors, |fields| {
                service::sku_draft(fields).and_then(|draft| draft.validate(&settings))
            })
            .map_err(refused)?;
            let mut tx = store.begin_write().await?;
            skus::upsert_many(tx.conn(), client, &skus, at).await?;
            tx.commit().await?;
        }
        UploadKind::Suppliers | UploadKind::Customers => {
            let partner_kind = if kind == UploadKind::Suppliers {
                PartnerKind::Supplier
            } else {
                PartnerKind::Customer
            };
            let valid = validate_rows(rows, read_errors, |fields| {
                service::partner_draft(fields).and_then(|draft| draft.validate())
            })
            .map_err(refused)?;
            let mut tx = store.begin_write().await?;
            partners::upsert_many(tx.conn(), client, partner_kind, &valid, at).await?;
            tx.commit().await?;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_must_name_known_columns_once_and_include_code() {
        let errors = read_rows(UploadKind::Skus, b"name,colour,name\n", 10).unwrap_err();
        let columns: Vec<&str> = errors.iter().map(|e| e.column.as_str()).collect();
        assert_eq!(columns, ["colour", "name", "code"]);
        assert!(errors.iter().all(|e| e.row == 1));
    }

    #[test]
    fn rows_are_numbered_from_two_and_repeated_codes_refused() {
        let csv = "\u{feff}code,name,mrp,attr.colour\nA,Tee,10,Red\nB,,5,\nA,Tee again,10,\n";
        let (rows, errors) = read_rows(UploadKind::Skus, csv.as_bytes(), 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            errors,
            [RowError {
                row: 4,
                column: "code".into(),
                message: "A appears already in row 2".into()
            }]
        );
        let (rows, errors) =
            read_rows(UploadKind::Skus, &csv.as_bytes()[..csv.len() - 17], 10).unwrap();
        assert!(errors.is_empty());
        assert_eq!(
            rows[0].fields.get("attributes.colour").as_deref(),
            Some("Red")
        );
        assert_eq!(rows[1].fields.get("name"), None);
    }

    #[test]
    fn attribute_fields_report_as_their_column() {
        assert_eq!(column_of("attributes.colour"), "attr.colour");
        assert_eq!(column_of("mrp"), "mrp");
    }

    #[test]
    fn a_file_over_the_row_limit_is_refused() {
        let (_, errors) =
            read_rows(UploadKind::Suppliers, b"code,name\nA,a\nB,b\nC,c\n", 2).unwrap();
        assert_eq!(errors[0].row, 4);
    }
}
